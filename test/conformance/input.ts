import * as assert from 'uvu/assert';
import { ValidationError } from '../../bus/errors.js';
import { rejects, uniq } from '../helpers/index.js';
import type { Bus, BusOptions } from '../../bus/contract.js';
import { quiet, type Target } from './index.js';

export function inputSuite(a: Target): void {
  const test = a.scenarios('bad input');

  /** A call refused before anything is stored, the error code and what its message must name. */
  interface Refusal {
    what: string;
    call(bus: Bus, type: string): Promise<unknown>;
    code: 'INVALID_TYPE' | 'INVALID_OPTION' | 'PAYLOAD_TOO_LARGE';
    names: string[];
  }
  const noop = () => {};
  const group = () => uniq('g');

  // Types, sizes and subscribe options, on a bus whose maxPayloadBytes is 1024.
  const limits: Refusal[] = [
    { what: 'a type with a space', call: (bus) => bus.publish('has space', 1), code: 'INVALID_TYPE', names: ['"has space"', 'A-Z'] },
    { what: 'a type past 200 characters', call: (bus) => bus.publish('x'.repeat(201), 1), code: 'INVALID_TYPE', names: ['1-200'] },
    { what: 'an event past maxPayloadBytes', call: (bus, type) => bus.publish(type, 'y'.repeat(2000)), code: 'PAYLOAD_TOO_LARGE', names: ['1024'] },
    { what: 'a batch with one bad type', call: (bus, type) => bus.publishBatch([{ type, data: 1 }, { type: 'bad type', data: 2 }]), code: 'INVALID_TYPE', names: ['bad type'] },
    { what: 'concurrency 0', call: (bus, type) => bus.subscribe({ group: group(), types: [type], concurrency: 0 }, noop), code: 'INVALID_OPTION', names: ['concurrency', '0', '1 to 10000'] },
    { what: 'an unknown orderBy', call: (bus, type) => bus.subscribe({ group: group(), types: [type], orderBy: 'time' as never }, noop), code: 'INVALID_OPTION', names: ['orderBy', 'subject'] },
    { what: 'a misspelt subscribe option', call: (bus, type) => bus.subscribe({ group: group(), types: [type], concurency: 2 } as never, noop), code: 'INVALID_OPTION', names: ['concurency'] },
    { what: 'no types', call: (bus) => bus.subscribe({ group: group(), types: [] }, noop), code: 'INVALID_OPTION', names: ['types'] },
    { what: 'a pattern with two stars', call: (bus) => bus.subscribe({ group: group(), types: ['a*b*'] }, noop), code: 'INVALID_TYPE', names: ['a*b*'] },
    { what: 'a replay bound that is neither time nor position', call: (bus, type) => bus.replay({ types: [type], from: 'yesterday' }, noop), code: 'INVALID_OPTION', names: ['yesterday'] },
    { what: "a replay from 'latest' (nothing is stored after it)", call: (bus, type) => bus.replay({ types: [type], from: 'latest' }, noop), code: 'INVALID_OPTION', names: ['from "latest"', "'earliest'"] },
    { what: 'a negative maxPayloadBytes', call: () => a.make({ maxPayloadBytes: -1 }), code: 'INVALID_OPTION', names: ['maxPayloadBytes', '-1'] },
  ];

  // Publish fields and unknown keys of publish, publishBatch, replay and dead-letter listing.
  const fields: Refusal[] = [
    { what: 'an empty source', call: (bus, type) => bus.publish(type, 1, { source: '' }), code: 'INVALID_OPTION', names: ['source ""'] },
    { what: 'a source that is not a string', call: (bus, type) => bus.publish(type, 1, { source: 7 as never }), code: 'INVALID_OPTION', names: ['source 7'] },
    { what: 'a subject that is not a string', call: (bus, type) => bus.publish(type, 1, { subject: 7 as never }), code: 'INVALID_OPTION', names: ['subject 7'] },
    { what: 'a time that is no time', call: (bus, type) => bus.publish(type, 1, { time: 'soon' }), code: 'INVALID_OPTION', names: ['time "soon"'] },
    { what: 'a misspelt publish option', call: (bus, type) => bus.publish(type, 1, { subjet: 's' } as never), code: 'INVALID_OPTION', names: ['unknown publish option "subjet"', 'subject'] },
    { what: 'publish options that are not an object', call: (bus, type) => bus.publish(type, 1, 'urgent' as never), code: 'INVALID_OPTION', names: ['publish options must be an object'] },
    { what: 'a misspelt key in a batch entry', call: (bus, type) => bus.publishBatch([{ type, data: 1 }, { type, data: 2, sorce: '/x' } as never]), code: 'INVALID_OPTION', names: ['publishBatch entry 1', '"sorce"'] },
    { what: 'an empty source in a batch entry', call: (bus, type) => bus.publishBatch([{ type, data: 1 }, { type, data: 2, source: '' }]), code: 'INVALID_OPTION', names: ['source ""'] },
    { what: 'a misspelt replay option', call: (bus, type) => bus.replay({ types: [type], form: 'earliest' } as never, noop), code: 'INVALID_OPTION', names: ['unknown replay option "form"'] },
    { what: 'a misspelt dead-letter list option', call: (bus) => bus.deadLetters.list({ grup: 'g' } as never), code: 'INVALID_OPTION', names: ['unknown dead-letter list option "grup"'] },
  ];

  /**
   * One scenario per refusal, all on one bus (made once for the table, closed after it) holding one
   * event of `type`; the table's last scenario checks no refused call stored anything.
   */
  function table(title: string, cases: Refusal[], options: BusOptions): void {
    const type = uniq('refused');
    let bus: Bus | undefined;
    const shared = async () => {
      if (bus === undefined) {
        bus = await a.create({ logger: quiet, ...options });
        await bus.publish(type, 'kept');
      }
      return bus;
    };
    test.after(async () => void (await bus?.close()));
    for (const c of cases) {
      test(`${title}: ${c.what} is refused with a ValidationError ${c.code} naming ${c.names.join(', ')}`, async () => {
        const e = await rejects(async () => c.call(await shared(), type), c.code, ...c.names);
        assert.instance(e, ValidationError);
      });
    }
    test(`${title}: none of the refused calls stored anything`, async () => {
      const stored: unknown[] = [];
      await (await shared()).replay({ types: [type] }, (e) => void stored.push(e.data));
      assert.equal(stored, ['kept']);
    });
  }

  table('types, sizes, subscribe options', limits, { maxPayloadBytes: 1024 });
  table('publish fields and unknown keys', fields, {});

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
