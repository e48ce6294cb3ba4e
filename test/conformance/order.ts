import * as assert from 'uvu/assert';
import { sleep, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

export function orderSuite(a: Target): void {
  const test = a.scenarios('order');

  test('concurrency 1: a group sees a topic in publish order', async () => {
    const bus = await a.make();
    const type = uniq('seq');
    const got: number[] = [];
    const sub = await bus.subscribe({ group: uniq('g'), types: [type], concurrency: 1, from: 'earliest' }, async (e) => {
      got.push(e.data as number);
      if (got.length % 17 === 0) await sleep(1);
    });
    for (let i = 0; i < 100; i++) void bus.publish(type, i);
    await bus.publishBatch(Array.from({ length: 100 }, (_, i) => ({ type, data: 100 + i })));
    await waitFor('200 events', () => got.length >= 200);
    assert.equal(got, Array.from({ length: 200 }, (_, i) => i));
    await sub.close();
    await bus.close();
  });

  test('publishes made while earlier ones are still being stored (one a turn, none awaited) keep publish order, with ids and batches among them', async () => {
    const bus = await a.make();
    const type = uniq('seq');
    const got: number[] = [];
    const sub = await bus.subscribe({ group: uniq('g'), types: [type], concurrency: 1, from: 'earliest' }, (e) => void got.push(e.data as number));
    const turn = () => new Promise<void>((r) => setImmediate(r));
    const sent: Promise<unknown>[] = [];
    for (let i = 0; i < 150; ) {
      if (i % 25 === 10) sent.push(bus.publish(type, i++, { id: uniq('own-id') }));
      else if (i % 25 === 20) sent.push(bus.publishBatch([{ type, data: i++ }, { type, data: i++ }, { type, data: i++ }]));
      else sent.push(bus.publish(type, i++));
      await turn();
    }
    await Promise.all(sent);
    await waitFor('150 events', () => got.length >= 150);
    assert.equal(got, Array.from({ length: 150 }, (_, i) => i));
    await sub.close();
    await bus.close();
  });

  test('never more than concurrency handlers at once: events read ahead, and a retry falling due while every slot is busy, wait for a slot', async () => {
    const bus = await a.make();
    const type = uniq('slots');
    let inFlight = 0;
    let most = 0;
    const done = new Set<number>();
    let firstFailed = false;
    const sub = await bus.subscribe({ group: uniq('g'), types: [type], concurrency: 2, from: 'earliest', backoff: { initialMs: 60, maxMs: 60, factor: 1 } }, async (e) => {
      const n = e.data as number;
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        if (n === 0 && !firstFailed) {
          firstFailed = true;
          throw new Error('first attempt fails: retried in 30-60 ms, while the next two run');
        }
        await sleep(300);
        done.add(n);
      } finally {
        inFlight--;
      }
    });
    await bus.publishBatch(Array.from({ length: 6 }, (_, i) => ({ type, data: i })));
    await waitFor('all 6 handled', () => done.size === 6, 15_000);
    assert.is(most, 2, `at most 2 handlers at once, saw ${most}`);
    await sub.close();
    await bus.close();
  });

  test('orderBy subject, concurrency 16, 50 subjects: one at a time and in order per subject, subjects in parallel', async () => {
    const bus = await a.make();
    const type = uniq('device.reading');
    const running = new Set<string>();
    const perSubject = new Map<string, number[]>();
    let overlap = 0;
    let maxParallel = 0;
    let done = 0;
    const sub = await bus.subscribe({ group: uniq('g'), types: [type], concurrency: 16, orderBy: 'subject' }, async (e) => {
      const s = e.subject!;
      if (running.has(s)) overlap++;
      running.add(s);
      maxParallel = Math.max(maxParallel, running.size);
      perSubject.set(s, [...(perSubject.get(s) ?? []), (e.data as { n: number }).n]);
      await sleep(Math.random() * 3);
      running.delete(s);
      done++;
    });
    // Pseudo-random subjects, so events of one subject often sit inside one fetch of 16.
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 50;
    const events = Array.from({ length: 1000 }, (_, n) => ({ type, data: { n }, subject: `dev-${rand()}` }));
    await bus.publishBatch(events);
    await waitFor('1000 events', () => done >= 1000, 20_000);
    assert.is(overlap, 0, 'two events of one subject ran at once');
    for (let s = 0; s < 50; s++) {
      const want = events.filter((e) => e.subject === `dev-${s}`).map((e) => e.data.n);
      assert.equal(perSubject.get(`dev-${s}`) ?? [], want, `order of dev-${s}`);
    }
    assert.ok(maxParallel > 1, `subjects ran in parallel (max ${maxParallel})`);
    await sub.close();
    await bus.close();
  });

  test.run();
}
