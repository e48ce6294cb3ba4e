import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../bus/errors.js';
import { rejects, uniq } from '../helpers/index.js';
import type { Target } from './index.js';

export function inputSuite(a: Target): void {
  const test = suite(`${a.name}: bad input`);

  test('invalid types, oversize payloads and bad options are refused, naming value and limit; nothing stored', async () => {
    const bus = await a.make({ maxPayloadBytes: 1024 });
    const type = uniq('ok');
    await bus.publish(type, 'x');
    await rejects(() => bus.publish('has space', 1), 'INVALID_TYPE', '"has space"', 'A-Z');
    await rejects(() => bus.publish('x'.repeat(201), 1), 'INVALID_TYPE', '1-200');
    await rejects(() => bus.publish(type, 'y'.repeat(2000)), 'PAYLOAD_TOO_LARGE', type, '1024');
    const e = await rejects(() => bus.publishBatch([{ type, data: 1 }, { type: 'bad type', data: 2 }]), 'INVALID_TYPE', 'bad type');
    assert.instance(e, ValidationError);
    await rejects(() => bus.subscribe({ group: uniq('g'), types: [type], concurrency: 0 }, () => {}), 'INVALID_OPTION', 'concurrency', '0', '1 to 10000');
    await rejects(() => bus.subscribe({ group: uniq('g'), types: [type], orderBy: 'time' as never }, () => {}), 'INVALID_OPTION', 'orderBy', 'subject');
    await rejects(() => bus.subscribe({ group: uniq('g'), types: [type], concurency: 2 } as never, () => {}), 'INVALID_OPTION', 'concurency');
    await rejects(() => bus.subscribe({ group: uniq('g'), types: [] }, () => {}), 'INVALID_OPTION', 'types');
    await rejects(() => bus.subscribe({ group: uniq('g'), types: ['a*b*'] }, () => {}), 'INVALID_TYPE', 'a*b*');
    await rejects(() => bus.replay({ types: [type], from: 'yesterday' }, () => {}), 'INVALID_OPTION', 'yesterday');
    await rejects(() => a.make({ maxPayloadBytes: -1 }), 'INVALID_OPTION', 'maxPayloadBytes', '-1');
    const len = (await bus.stats()).find((s) => s.type === type)!.length;
    assert.is(len, 1, 'a refused publish stored something');
    await bus.close();
  });

  test('publish, publishBatch, replay and dead-letter listing refuse bad fields and unknown keys; nothing stored', async () => {
    const bus = await a.make();
    const type = uniq('strict');
    await bus.publish(type, 'kept');
    await rejects(() => bus.publish(type, 1, { source: '' }), 'INVALID_OPTION', 'source ""');
    await rejects(() => bus.publish(type, 1, { source: 7 as never }), 'INVALID_OPTION', 'source 7');
    await rejects(() => bus.publish(type, 1, { subject: 7 as never }), 'INVALID_OPTION', 'subject 7');
    await rejects(() => bus.publish(type, 1, { time: 'soon' }), 'INVALID_OPTION', 'time "soon"');
    await rejects(() => bus.publish(type, 1, { subjet: 's' } as never), 'INVALID_OPTION', 'unknown publish option "subjet"', 'subject');
    await rejects(() => bus.publish(type, 1, 'urgent' as never), 'INVALID_OPTION', 'publish options must be an object');
    await rejects(() => bus.publishBatch([{ type, data: 1 }, { type, data: 2, sorce: '/x' } as never]), 'INVALID_OPTION', 'publishBatch entry 1', '"sorce"');
    await rejects(() => bus.publishBatch([{ type, data: 1 }, { type, data: 2, source: '' }]), 'INVALID_OPTION', 'source ""');
    await rejects(() => bus.replay({ types: [type], form: 'earliest' } as never, () => {}), 'INVALID_OPTION', 'unknown replay option "form"');
    await rejects(() => bus.deadLetters.list({ grup: 'g' } as never), 'INVALID_OPTION', 'unknown dead-letter list option "grup"');
    const stored: unknown[] = [];
    await bus.replay({ types: [type] }, (e) => void stored.push(e.data));
    assert.equal(stored, ['kept'], 'a refused publish stored something');
    await bus.close();
  });

  test('replay and rewind bounds out of range are a ValidationError, not a store error', async () => {
    const bus = await a.make();
    const type = uniq('bounds');
    const group = uniq('g');
    await bus.publish(type, 1);
    const sub = await bus.subscribe({ group, types: [type] }, () => {});
    await sub.close();
    const huge = '1'.repeat(23); // past Redis' 64-bit id parts and SQLite's safe integers
    for (const from of [1e21, 8_640_000_000_000_001, huge, `${huge}-0`, `1-${huge}`]) {
      const code = 'INVALID_OPTION';
      const e = await rejects(() => bus.replay({ types: [type], from }, () => {}), code, 'from');
      assert.instance(e, ValidationError);
      await rejects(() => bus.replay({ types: [type], to: from }, () => {}), code, 'to');
      await rejects(() => bus.rewind({ group, type, from }), code, 'from');
    }
    await bus.close();
  });

  test.run();
}
