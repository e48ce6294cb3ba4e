import * as assert from 'uvu/assert';
import type { CloudEvent } from '../../bus/event.js';
import { assertSameIds, sleep, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

export function deliverySuite(a: Target): void {
  const test = a.scenarios('delivery');

  test('publish then subscribe from earliest: all delivered, fields intact', async () => {
    const bus = await a.make();
    const type = uniq('order.created');
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      ids.push(await bus.publish(type, { n: i, nested: { ok: true } }, { subject: `s${i % 3}`, traceparent: '00-abc-def-01', dataschema: 'urn:x' }));
    }
    const got: CloudEvent[] = [];
    const sub = await bus.subscribe({ group: uniq('g'), types: [type], from: 'earliest' }, (e) => void got.push(e));
    await waitFor('20 events', () => got.length >= 20);
    assertSameIds(got.map((e) => e.id), ids);
    const e5 = got.find((e) => e.id === ids[5])!;
    assert.equal(e5.data, { n: 5, nested: { ok: true } });
    assert.is(e5.subject, 's2');
    assert.is(e5.type, type);
    assert.is(e5.specversion, '1.0');
    assert.is(e5.traceparent, '00-abc-def-01');
    assert.is(e5.dataschema, 'urn:x');
    assert.ok(Date.parse(e5.time) > 0);
    await sub.close();
    await bus.close();
  });

  test('publishDetailed and publishBatchDetailed resolve each id with spooled false (no spool), and the events are stored as publish stores them', async () => {
    const bus = await a.make();
    const type = uniq('order.detailed');
    const one = await bus.publishDetailed(type, { n: 0 }, { id: 'detailed-1' });
    assert.equal(one, { id: 'detailed-1', spooled: false });
    const many = await bus.publishBatchDetailed([{ type, data: { n: 1 } }, { type, data: { n: 2 } }]);
    assert.equal(many.map((r) => r.spooled), [false, false]);
    assert.equal((await bus.publishDetailed(type, { n: 9 }, { id: 'detailed-1' })).id, 'detailed-1');
    const got: CloudEvent[] = [];
    await bus.replay({ types: [type] }, (e) => void got.push(e));
    assert.equal(got.map((e) => e.id), ['detailed-1', ...many.map((r) => r.id)], 'stored once each, in order (the repeated id deduplicated)');
    assert.equal(got.map((e) => (e.data as { n: number }).n), [0, 1, 2]);
    assert.is(bus.spool, undefined, 'no spool unless configured');
    await bus.close();
  });

  test('subscribe then publish: a new group starts at the newest event', async () => {
    const bus = await a.make();
    const type = uniq('order.created');
    const before = await bus.publish(type, { before: true });
    const got: string[] = [];
    const sub = await bus.subscribe({ group: uniq('g'), types: [type] }, (e) => void got.push(e.id));
    const ids = (await bus.publishBatch(Array.from({ length: 20 }, (_, i) => ({ type, data: i })))) as string[];
    await waitFor('20 events', () => got.length >= 20);
    await sleep(100);
    assert.not.ok(got.includes(before), 'an event published before a latest group existed was delivered');
    assertSameIds(got, ids);
    await sub.close();
    await bus.close();
  });

  test('50 concurrent publishers x 100 events, 4 consumers per group: once per group, two groups each get all, topics isolated', async () => {
    const bus = await a.make();
    const type = uniq('load');
    const other = uniq('load.other');
    const groups = [uniq('g1'), uniq('g2')];
    const got = new Map(groups.map((g) => [g, [] as string[]]));
    const strays: string[] = [];
    const subs = [];
    for (const group of groups) {
      for (let c = 0; c < 4; c++) {
        subs.push(
          await bus.subscribe({ group, consumer: `c${c}`, types: [type], concurrency: 8 }, (e) => {
            if (e.type !== type) strays.push(e.type);
            got.get(group)!.push(e.id);
          }),
        );
      }
    }
    const publishers = Array.from({ length: 50 }, async (_, p) => {
      const ids: string[] = [];
      for (let i = 0; i < 100; i++) {
        ids.push(await bus.publish(type, { p, i }));
        if (i % 10 === 0) await bus.publish(other, { p, i });
      }
      return ids;
    });
    const ids = (await Promise.all(publishers)).flat();
    for (const group of groups) await waitFor(`${group} gets 5000`, () => got.get(group)!.length >= 5000, 30_000);
    await sleep(200);
    for (const group of groups) assertSameIds(got.get(group)!, ids, group);
    assert.equal(strays, []);
    await Promise.all(subs.map((s) => s.close()));
    await bus.close();
  });

  test('prefix patterns match existing and later topics, and nothing else', async () => {
    const bus = await a.make();
    const root = uniq('dev');
    const early = await bus.publish(`${root}.a`, 1);
    await bus.publish(`${root}x.b`, 'not a match: prefix is "<root>."');
    const got: string[] = [];
    const sub = await bus.subscribe({ group: uniq('g'), types: [`${root}.*`], from: 'earliest' }, (e) => void got.push(e.id));
    const later = [await bus.publish(`${root}.b.c`, 2), await bus.publish(`${root}.a`, 3)];
    await waitFor('3 events', () => got.length >= 3, 5000);
    await sleep(100);
    assertSameIds(got, [early, ...later]);
    await sub.close();
    await bus.close();
  });

  test('a pattern subscription made before any matching topic exists gets every event published after it', async () => {
    const bus = await a.make();
    const root = uniq('late');
    const got: string[] = [];
    const sub = await bus.subscribe({ group: uniq('g'), types: [`${root}.*`] }, (e) => void got.push(e.id));
    const ids = [await bus.publish(`${root}.a`, 1), await bus.publish(`${root}.b`, 2)];
    await waitFor('both events', () => got.length >= 2, 5000);
    assertSameIds(got, ids);
    await sub.close();
    await bus.close();
  });

  test.run();
}
