import * as assert from 'uvu/assert';
import type { CloudEvent } from '../../bus/event.js';
import type { Bus } from '../../bus/contract.js';
import { assertSameIds, rejects, sleep, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

async function groupStats(bus: Bus, type: string, group: string) {
  return (await bus.stats()).find((s) => s.type === type)?.groups.find((g) => g.group === group);
}

export function historySuite(a: Target): void {
  const test = a.scenarios('replay, rewind, retention, dedup');

  test('replay by position range and by time range hands exactly those events and leaves the group untouched', async () => {
    const bus = await a.make();
    const type = uniq('ledger');
    const group = uniq('g');
    const pos = new Map<string, string>();
    const sub = await bus.subscribe({ group, types: [type], from: 'earliest' }, (e, ctx) => void pos.set(e.id, ctx.position));
    const batches: string[][] = [];
    const times: number[] = [];
    for (let b = 0; b < 3; b++) {
      times.push(Date.now());
      batches.push(await bus.publishBatch(Array.from({ length: 10 }, (_, i) => ({ type, data: b * 10 + i }))));
      await sleep(60);
    }
    times.push(Date.now());
    const ids = batches.flat();
    await waitFor('30 consumed', () => pos.size === 30);
    await sub.close();
    const before = await groupStats(bus, type, group);

    const byPos: CloudEvent[] = [];
    const r1 = await bus.replay({ types: [type], from: pos.get(ids[9])!, to: pos.get(ids[19])! }, (e) => void byPos.push(e));
    assertSameIds(byPos.map((e) => e.id), ids.slice(9, 20), 'replay by position');
    assert.equal(byPos.map((e) => e.data), Array.from({ length: 11 }, (_, i) => 9 + i), 'in position order');
    assert.is(r1.handled, 11);

    const byTime: string[] = [];
    await bus.replay({ types: [type], from: new Date(times[1]), to: new Date(times[2] - 1) }, (e) => void byTime.push(e.id));
    assertSameIds(byTime, batches[1], 'replay by time');

    const failing = await bus.replay({ types: [type] }, (e) => {
      if (e.data === 3) throw new Error('bad three');
    });
    assert.is(failing.handled, 29);
    assert.is(failing.failed.length, 1);
    assert.ok(failing.failed[0].error.includes('bad three'));

    const fromEarliest: string[] = [];
    const all = await bus.replay({ types: [type], from: 'earliest' }, (e) => void fromEarliest.push(e.id));
    assertSameIds(fromEarliest, ids, "replay from: 'earliest' hands over the whole topic");
    assert.is(all.handled, 30);

    assert.equal(await groupStats(bus, type, group), before, 'replay moved the group');
    assert.is(before?.lag, 0);
    await bus.close();
  });

  test('rewind re-delivers through the normal path; rewind to earliest re-delivers all', async () => {
    const bus = await a.make();
    const type = uniq('audit');
    const group = uniq('g');
    const got: string[] = [];
    const pos = new Map<string, string>();
    const sub = await bus.subscribe({ group, types: [type] }, (e, ctx) => {
      got.push(e.id);
      pos.set(e.id, ctx.position);
    });
    const ids = await bus.publishBatch(Array.from({ length: 10 }, (_, i) => ({ type, data: i })));
    await waitFor('10', () => got.length === 10);
    await bus.rewind({ group, type, from: pos.get(ids[5])! });
    await waitFor('5 again', () => got.length === 15);
    assertSameIds(got.slice(10), ids.slice(5), 'after rewind to the 6th');
    await bus.rewind({ group, type, from: 'earliest' });
    await waitFor('10 again', () => got.length === 25);
    assertSameIds(got.slice(15), ids, 'after rewind to earliest');
    await sleep(100);
    assert.is(got.length, 25);
    await sub.close();
    await bus.close();
  });

  test('retention by count: the timer trims about maxLen, an explicit trim() exactly', async () => {
    const bus = await a.make({ retention: { maxLen: 10, intervalMs: 50 } });
    const type = uniq('metrics');
    await bus.publishBatch(Array.from({ length: 1000 }, (_, i) => ({ type, data: i })));
    const length = async () => (await bus.stats()).find((s) => s.type === type)!.length;
    await waitFor('the retention timer trims', async () => (await length()) <= 300, 5000);
    await bus.trim();
    const len = await length();
    assert.is(len, 10, 'an explicit trim() is exact');
    const kept: number[] = [];
    await bus.replay({ types: [type] }, (e) => void kept.push(e.data as number));
    assert.is(kept[kept.length - 1], 999, 'the newest events are kept');
    await bus.close();
  });

  test('an entry trimmed while pending is cleared, not looped on', async () => {
    const bus = await a.make({ retention: { maxLen: 600, intervalMs: 60_000 } });
    const type = uniq('volatile');
    const group = uniq('g');
    const held: string[] = [];
    const s1 = await bus.subscribe({ group, types: [type], concurrency: 3, claimIdleMs: 200 }, (e) => {
      held.push(e.id);
      return new Promise(() => {});
    });
    const doomed = await bus.publishBatch(Array.from({ length: 3 }, (_, i) => ({ type, data: i })));
    await waitFor('3 held', () => held.length === 3);
    await s1.close({ drain: false });
    const kept = await bus.publishBatch(Array.from({ length: 600 }, (_, i) => ({ type, data: 100 + i })));
    await bus.trim();
    const got: string[] = [];
    const s2 = await bus.subscribe({ group, types: [type], concurrency: 16, claimIdleMs: 200 }, (e) => void got.push(e.id));
    await waitFor('the kept events', () => got.length >= kept.length, 10_000);
    await sleep(500);
    assert.equal(got.filter((id) => doomed.includes(id)), [], 'a trimmed event was delivered');
    assertSameIds(got, kept);
    await waitFor('pending cleared', async () => (await groupStats(bus, type, group))?.pending === 0, 5000);
    await s2.close();
    await bus.close();
  });

  test('a republished id inside the dedup window is stored once; another source with that id is another event', async () => {
    const bus = await a.make();
    const type = uniq('webhook');
    const id = uniq('delivery');
    assert.is(await bus.publish(type, { v: 1 }, { id }), id);
    assert.is(await bus.publish(type, { v: 2 }, { id }), id);
    await bus.publishBatch([{ type, data: { v: 3 }, id }, { type, data: { v: 4 }, id }, { type, data: { v: 5 }, id, source: '/other' }]);
    await Promise.all([bus.publish(type, { v: 6 }, { id }), bus.publish(type, { v: 7 }, { id })]);
    const stored: unknown[] = [];
    await bus.replay({ types: [type] }, (e) => void stored.push([e.source, e.data]));
    assert.is(stored.length, 2, JSON.stringify(stored));
    assert.equal((stored[0] as unknown[])[1], { v: 1 });
    assert.equal((stored[1] as unknown[])[0], '/other');
    await bus.close();
  });

  test('dedup tells sources and ids apart exactly: (a|b, c) and (a, b|c) are two events', async () => {
    const bus = await a.make();
    const type = uniq('webhook');
    const tag = uniq('x');
    await bus.publish(type, 1, { source: `${tag}|b`, id: 'c' });
    await bus.publish(type, 2, { source: tag, id: 'b|c' });
    await bus.publishBatch([{ type, data: 3, source: `${tag}|b|c`, id: 'd' }, { type, data: 4, source: tag, id: 'b|c|d' }]);
    const stored: unknown[] = [];
    await bus.replay({ types: [type] }, (e) => void stored.push(e.data));
    assert.equal(stored, [1, 2, 3, 4]);
    await bus.close();
  });

  test('a publish can carry its own dedup window: past it, the same id is stored again; with 0, every time', async () => {
    const bus = await a.make();
    const type = uniq('webhook');
    const id = uniq('delivery');
    await bus.publish(type, { v: 1 }, { id, dedupWindowMs: 100 });
    await bus.publish(type, { v: 2 }, { id, dedupWindowMs: 100 });
    await sleep(250);
    await bus.publishBatch([{ type, data: { v: 3 }, id, dedupWindowMs: 100 }]);
    const stored: unknown[] = [];
    await bus.replay({ types: [type] }, (e) => void stored.push(e.data));
    assert.equal(stored, [{ v: 1 }, { v: 3 }]);
    // A window of 0 keeps no marker: each publish under the id is stored.
    const none = uniq('no-window');
    await bus.publish(none, { v: 1 }, { id, dedupWindowMs: 0 });
    await bus.publishBatch([{ type: none, data: { v: 2 }, id, dedupWindowMs: 0 }]);
    const both: unknown[] = [];
    await bus.replay({ types: [none] }, (e) => void both.push(e.data));
    assert.equal(both, [{ v: 1 }, { v: 2 }]);
    await rejects(() => bus.publish(type, {}, { id, dedupWindowMs: -1 }), 'INVALID_OPTION', 'dedupWindowMs -1');
    await bus.close();
  });

  test.run();
}
