import * as assert from 'uvu/assert';
import { assertSameIds, sleep, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

export function claimSuite(a: Target): void {
  const test = a.scenarios('claims and leases');

  test('a consumer that stops without acking: another consumer of the group gets its events after claimIdle', async () => {
    const bus = await a.make();
    const type = uniq('job');
    const group = uniq('g');
    const started: string[] = [];
    const s1 = await bus.subscribe({ group, consumer: 'dies', types: [type], concurrency: 5, claimIdleMs: 300 }, (e) => {
      started.push(e.id);
      return new Promise(() => {}); // never settles: the consumer "hangs"
    });
    const ids = await bus.publishBatch(Array.from({ length: 5 }, (_, i) => ({ type, data: i })));
    await waitFor('5 started', () => started.length === 5);
    await s1.close({ drain: false });
    const got: Array<[string, number]> = [];
    const t0 = Date.now();
    const s2 = await bus.subscribe({ group, consumer: 'heir', types: [type], concurrency: 5, claimIdleMs: 300 }, (e, ctx) => void got.push([e.id, ctx.attempt]));
    await waitFor('5 reclaimed', () => got.length >= 5, 5000);
    assertSameIds(got.map(([id]) => id), ids);
    assert.ok(got.every(([, n]) => n === 2), `second attempt each: ${JSON.stringify(got.map(([, n]) => n))}`);
    assert.ok(Date.now() - t0 >= 150, 'reclaimed before the lease could have expired');
    await s2.close();
    await bus.close();
  });

  test('a handler slower than claimIdle is not redelivered while it runs (lease renewal)', async () => {
    const bus = await a.make();
    const type = uniq('llm');
    const group = uniq('g');
    const calls: string[] = [];
    const handler = async (e: { id: string }) => {
      calls.push(e.id);
      await sleep(900);
    };
    const subs = [
      await bus.subscribe({ group, consumer: 'a', types: [type], concurrency: 4, claimIdleMs: 200 }, handler),
      await bus.subscribe({ group, consumer: 'b', types: [type], concurrency: 4, claimIdleMs: 200 }, handler),
    ];
    const ids = await bus.publishBatch(Array.from({ length: 6 }, (_, i) => ({ type, data: i })));
    await waitFor('6 started', () => calls.length >= 6);
    await sleep(1300);
    assertSameIds(calls, ids, 'handler invocations');
    await Promise.all(subs.map((s) => s.close()));
    const g = (await bus.stats()).find((s) => s.type === type)!.groups.find((x) => x.group === group)!;
    assert.is(g.pending, 0);
    await bus.close();
  });


  test('readAhead unset, slow handlers: a busy consumer holds no event another consumer of the group could start', async () => {
    const bus = await a.make();
    const type = uniq('llm.call');
    const group = uniq('g');
    const started = new Map<string, number>();
    const handled: string[] = [];
    const handler = async (e: { data: unknown }) => {
      const { name, ms } = e.data as { name: string; ms: number };
      started.set(name, Date.now());
      await sleep(ms);
      handled.push(name);
    };
    const subs = [
      await bus.subscribe({ group, consumer: 'a', types: [type], concurrency: 1 }, handler),
      await bus.subscribe({ group, consumer: 'b', types: [type], concurrency: 1 }, handler),
    ];
    // Warm-up: each consumer measures handler calls of 60 ms, far over the read-ahead's 10 ms.
    await bus.publishBatch(Array.from({ length: 4 }, (_, i) => ({ type, data: { name: `warm${i}`, ms: 60 } })));
    await waitFor('warm-up handled', () => handled.length === 4, 10_000);
    // The moment that matters: one consumer takes the slow call. With read-ahead it would also take
    // the next event and hold it for 1.5 s while the other consumer idles after 100 ms.
    const t0 = Date.now();
    await bus.publishBatch([
      { type, data: { name: 'slow', ms: 1500 } },
      { type, data: { name: 'fast1', ms: 100 } },
      { type, data: { name: 'fast2', ms: 100 } },
    ]);
    await waitFor('all handled', () => handled.length === 7, 10_000);
    for (const name of ['fast1', 'fast2']) {
      const waited = started.get(name)! - t0;
      assert.ok(waited < 900, `${name} started ${waited} ms after its publish: held behind the slow call`);
    }
    for (const sub of subs) await sub.close();
    await bus.close();
  });

  test.run();
}
