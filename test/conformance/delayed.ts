import * as assert from 'uvu/assert';
import { assertSameIds, rejects, sleep, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';
import { startChild } from './processes.js';

/** Delayed publishes (`delay`, `at`): stored at once, delivered once when due, never early, on every store. */
export function delayedSuite(a: Target): void {
  const test = a.scenarios('delayed publish');

  test('never early: delay 300 ms, at, and per event in a batch; each delivered after its due time by the handler clock, within a generous bound', async () => {
    const bus = await a.make();
    const type = uniq('later');
    const got = new Map<string, number>();
    await bus.subscribe({ group: uniq('g'), types: [type], concurrency: 8 }, (e) => void got.set(e.id, Date.now()));
    const t0 = Date.now();
    const one = await bus.publish(type, 'one', { delay: 300 });
    const tAt = Date.now();
    const atId = await bus.publish(type, 'at', { at: new Date(tAt + 400) });
    const tBatch = Date.now();
    const [now, later, iso] = await bus.publishBatch([
      { type, data: 'now' },
      { type, data: 'later', delay: 500 },
      { type, data: 'iso', at: new Date(tBatch + 350).toISOString() },
    ]);
    assert.is((await bus.stats()).find((s) => s.type === type)?.due, 4, 'four due, stored before the publishes resolved');
    await waitFor('all five delivered', () => got.size === 5, 10_000);
    const lateness: number[] = [];
    for (const [id, start, delay] of [[one, t0, 300], [atId, tAt, 400], [later, tBatch, 500], [iso, tBatch, 350]] as const) {
      const waited = got.get(id)! - start;
      assert.ok(waited >= delay, `${id}: delivered ${waited} ms after its publish, before its ${delay} ms`);
      lateness.push(waited - delay);
    }
    assert.ok(got.get(now)! < got.get(one)!, 'the batch entry without delay went first');
    // A generous bound for a shared machine; the bench measures the real lateness.
    assert.ok(Math.max(...lateness) < 3000, `late by ${lateness.join(', ')} ms`);
    assert.is((await bus.stats()).find((s) => s.type === type)?.due, 0);
  });

  test('Bus.observe: the mover tells the delayed events it moved, per type, each with its lateness (never negative)', async () => {
    const bus = await a.make();
    const type = uniq('later');
    const other = uniq('later');
    await rejects(() => bus.observe!(null as never), 'INVALID_OPTION', 'observer');
    const moved = new Map<string, { count: number; late: number[] }>();
    bus.observe!({
      dueMoved: (ms) => {
        for (const m of ms) {
          const seen = moved.get(m.type) ?? { count: 0, late: [] };
          seen.count += m.count;
          seen.late.push(...m.lateMs);
          moved.set(m.type, seen);
        }
      },
    });
    // An observer that throws is logged, and holds back neither the move nor the others.
    bus.observe!({ dueMoved: () => { throw new Error('observer bug'); } });
    await bus.publishBatch([
      { type, data: 1, delay: 200 },
      { type, data: 2, delay: 250 },
      { type: other, data: 3, delay: 200 },
    ]);
    await waitFor('three moves told', () => (moved.get(type)?.count ?? 0) + (moved.get(other)?.count ?? 0) === 3, 10_000);
    assert.is(moved.get(type)!.count, 2);
    assert.is(moved.get(type)!.late.length, 2);
    assert.is(moved.get(other)!.count, 1);
    const late = [...moved.values()].flatMap((m) => m.late);
    assert.ok(late.every((ms) => ms >= 0 && ms < 3000), `lateness ${late.join(', ')} ms`);
    assert.is((await bus.stats()).find((s) => s.type === type)?.length, 2, 'both stored in their topic');
  });

  test('refused at the call, nothing stored: negative or non-finite delay, delay and at together, an unreadable at, beyond 365 days', async () => {
    const bus = await a.make();
    const type = uniq('bad');
    await rejects(() => bus.publish(type, 1, { delay: -1 }), 'INVALID_OPTION', 'delay -1', '365 days');
    await rejects(() => bus.publish(type, 1, { delay: Number.NaN }), 'INVALID_OPTION', 'delay');
    await rejects(() => bus.publish(type, 1, { delay: 10, at: Date.now() + 10 }), 'INVALID_OPTION', 'delay or at, not both');
    await rejects(() => bus.publish(type, 1, { at: 'tomorrow' }), 'INVALID_OPTION', 'at "tomorrow"');
    await rejects(() => bus.publish(type, 1, { at: new Date('x') }), 'INVALID_OPTION', 'Invalid Date');
    await rejects(() => bus.publish(type, 1, { delay: 366 * 24 * 3600 * 1000 }), 'INVALID_OPTION', '365 days');
    await rejects(() => bus.publishBatch([{ type, data: 1 }, { type, data: 2, delay: -5 }]), 'INVALID_OPTION', 'delay -5');
    const s = (await bus.stats()).find((x) => x.type === type);
    assert.ok(s === undefined || (s.length === 0 && !s.due), JSON.stringify(s));
  });

  test('an at in the past, or delay 0, publishes at once', async () => {
    const bus = await a.make();
    const type = uniq('past');
    const got: string[] = [];
    await bus.subscribe({ group: uniq('g'), types: [type] }, (e) => void got.push(e.id));
    const ids = [await bus.publish(type, 1, { at: Date.now() - 60_000 }), await bus.publish(type, 2, { delay: 0 })];
    assert.is((await bus.stats()).find((s) => s.type === type)?.length, 2, 'stored in the topic, not due');
    await waitFor('both delivered', () => got.length === 2);
    assertSameIds(got, ids);
  });

  test('dedup ids apply to delayed events at publish: a second publish of the id inside the window is dropped, delayed or not', async () => {
    const bus = await a.make();
    const type = uniq('dedup');
    const got: string[] = [];
    await bus.subscribe({ group: uniq('g'), types: [type] }, (e) => void got.push(`${e.id}:${String(e.data)}`));
    await bus.publish(type, 'x-delayed', { id: 'x', delay: 300 });
    await bus.publish(type, 'x-again-now', { id: 'x' });
    await bus.publish(type, 'x-again-delayed', { id: 'x', delay: 100 });
    await bus.publish(type, 'y-now', { id: 'y' });
    await bus.publish(type, 'y-again-delayed', { id: 'y', delay: 100 });
    await bus.publishBatch([{ type, data: 'z-delayed', id: 'z', delay: 200 }, { type, data: 'z-again', id: 'z', delay: 50 }]);
    await waitFor('three delivered', () => got.length >= 3, 10_000);
    await sleep(600); // past every due time: nothing else may come
    assert.equal(got.sort(), ['x:x-delayed', 'y:y-now', 'z:z-delayed']);
  });

  if (a.features.countsDueQueries) {
    test('a bus that only publishes undelayed events asks the store nothing about due entries; subscribing starts its mover', async () => {
      const { bus, count, close } = await a.store.dueQueries!({});
      try {
        const type = uniq('now');
        await bus.publish(type, 1);
        await bus.publishBatch([{ type, data: 2 }, { type, data: 3, id: 'x' }]);
        await bus.publish(type, 4, { delay: 0 }); // not delayed: published at once
        await sleep(500); // a mover would have asked several times by now (it polls every 100 ms)
        assert.is(await count(), 0, 'due-entry commands from a bus that never needed a mover');
        // The same count sees the mover once the bus subscribes (the hook counts what it should).
        await bus.subscribe({ group: uniq('g'), types: [type] }, () => {});
        await waitFor('the mover asks the store', async () => (await count()) > 0, 10_000);
      } finally {
        await close();
      }
    });

    test('moveDue: false: a subscribing bus never moves; the delayed event it publishes is moved by a bus that runs a mover', async () => {
      const { bus, count, another, close } = await a.store.dueQueries!({ moveDue: false });
      try {
        const type = uniq('later');
        const got: unknown[] = [];
        await bus.subscribe({ group: uniq('g'), types: [type] }, (e) => void got.push(e.data));
        await sleep(500);
        assert.is(await count(), 0, 'due-entry commands from a bus with moveDue: false');
        await bus.publish(type, 'later', { delay: 200 });
        const stored = await count(); // the publish itself stores the due entry
        await sleep(700);
        assert.equal(got, [], 'not moved while only this bus runs');
        assert.is(await count(), stored, 'no due-entry commands after its publish');
        if (!another) return; // SQLite :memory: is private to the bus' connection
        const mover = await another();
        await mover.subscribe({ group: uniq('g'), types: [uniq('other')] }, () => {});
        await waitFor('moved by the other bus', () => got.length === 1, 10_000);
        assert.equal(got, ['later']);
      } finally {
        await close();
      }
    });
  }

  if (a.features.sharedAcrossProcesses) {
    test('3 processes publish 1000 delayed events each and run movers with this bus, one SIGKILLed while moving: each event delivered once', async () => {
      const bus = await a.make();
      const type = uniq('movers');
      const group = uniq('g');
      const got: string[] = [];
      await bus.subscribe({ group, types: [type], from: 'earliest', concurrency: 32 }, (e) => void got.push(e.id));
      const children = [0, 1, 2].map(() => startChild({ bus: a.store.processOptions!, role: 'delay', type, count: 1000, delayMs: 1500 }));
      try {
        await waitFor('published', () => children.every((c) => c.lines.includes('published')), 30_000);
        const published = children.flatMap((c) => c.lines.filter((l) => l.startsWith('pub ')).map((l) => l.split(' ')[1]));
        assert.is(published.length, 3000);
        // The first child's entries come due now: every mover (4 buses) is moving 3000 entries.
        const dueAt = Number(children[0].lines.find((l) => l.startsWith('due '))!.split(' ')[1]);
        await sleep(Math.max(0, dueAt - Date.now()));
        await waitFor('moving', () => got.length > 0, 10_000, 1);
        children[0].proc.kill('SIGKILL');
        await children[0].exited;
        await waitFor('3000 delivered', () => got.length >= 3000, 30_000);
        await sleep(500);
        assertSameIds(got, published);
        assert.is((await bus.stats()).find((s) => s.type === type)?.due, 0);
      } finally {
        for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
      }
    });
  }

  test.run();
}
