// Durable waits of keyed handlers (ctx.waitFor, issue 13 item 4) on every adapter: a handler parks
// for an event of its key, resumes on the first matching one (published after the wait began, or
// queued behind the handler before it), times out at its recorded deadline, keeps that deadline
// across a retry, and other keys (and the concurrency slot) stay free meanwhile.
import * as assert from 'uvu/assert';
import type { CloudEvent } from '../../bus/event.js';
import type { KeyedDeliveryContext } from '../../bus/keyed/contract.js';
import { WaitTimeoutError, ValidationError } from '../../bus/errors.js';
import { uniq, waitFor, sleep } from '../helpers/index.js';
import type { Target } from './index.js';

type Step = { step: string; got?: unknown };

export function waitSuite(a: Target): void {
  const test = a.scenarios('durable waits (ctx.waitFor)');

  test('waitFor resumes on the matching event published after it began, ignoring another key and a failing match; the state is committed', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    const waiting = new Set<string>();
    const done: string[] = [];
    await bus.subscribe({ group, types: [task], waitsFor: [granted], key: 'subject', concurrency: 4 }, async (e, c) => {
      const ctx = c as KeyedDeliveryContext<Step | null>;
      if (e.type !== task) return;
      ctx.state = { step: 'awaiting' };
      waiting.add(ctx.key);
      const m = await ctx.waitFor<{ ok: boolean }>(granted, { timeout: '30s', match: (x) => x.data.ok === true });
      ctx.state.step = 'approved';
      ctx.state.got = m.data;
      done.push(ctx.key);
    });
    await bus.publish(task, {}, { subject: 't1' });
    await waitFor('waiting', () => waiting.has('t1'), 10_000);
    await bus.publish(granted, { ok: true, which: 'other key' }, { subject: 't2' });
    await bus.publish(granted, { ok: false, which: 'no match' }, { subject: 't1' });
    await sleep(300);
    assert.equal(done, [], 'neither another key nor a failing match resumes it');
    await bus.publish(granted, { ok: true, which: 'match' }, { subject: 't1' });
    await waitFor('resumed', () => done.length === 1, 10_000);
    await waitFor('committed', async () => ((await bus.keys!.get(group, 't1'))?.state as Step | undefined)?.step === 'approved', 10_000);
    assert.equal((await bus.keys!.get(group, 't1'))!.state, { step: 'approved', got: { ok: true, which: 'match' } });
  });

  test('closing while a handler waits (a deploy) gives its delivery back uncounted: three stops and starts later it still waits, on attempt 1, and completes once', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    const runs: number[] = [];
    const done: string[] = [];
    const opts = { group, types: [task], waitsFor: [granted], key: 'subject' as const, maxAttempts: 2, claimIdleMs: 1500, drainTimeoutMs: 200 };
    const handler = async (e: CloudEvent, c: unknown) => {
      const ctx = c as KeyedDeliveryContext<Step | null>;
      if (e.type !== task) return;
      runs.push(ctx.attempt);
      await ctx.waitFor(granted, { timeout: '1m' });
      done.push(ctx.key);
    };
    let sub = await bus.subscribe(opts, handler);
    await bus.publish(task, {}, { subject: 'k1' });
    for (let stop = 1; stop <= 3; stop++) {
      await waitFor(`run ${stop} waiting`, () => runs.length === stop, 15_000);
      await sub.close(); // the handler is waiting: given up, its delivery given back
      sub = await bus.subscribe(opts, handler);
    }
    await waitFor('run 4 waiting', () => runs.length === 4, 15_000);
    await bus.publish(granted, {}, { subject: 'k1' });
    await waitFor('completed', () => done.length === 1, 15_000);
    assert.equal(runs, [1, 1, 1, 1], 'a stop while waiting is not a failed attempt');
    assert.equal((await bus.deadLetters.list({ group })).length, 0, 'not given up after maxAttempts stops');
    await sleep(300);
    assert.equal(done, ['k1']);
    await sub.close();
  });

  test('a match published before the handler reaches waitFor (queued behind it in the key\'s lane) is found', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    const got: unknown[] = [];
    const others: string[] = [];
    await bus.subscribe({ group, types: [task], waitsFor: [granted], key: 'subject', concurrency: 4 }, async (e, c) => {
      const ctx = c as KeyedDeliveryContext<Step | null>;
      if (e.type !== task) return void others.push(e.id);
      started = true;
      await gate; // the approval arrives now, before the wait begins
      const m = await ctx.waitFor(granted, { timeout: 20_000 });
      got.push(m.data);
      ctx.state = { step: 'approved' };
    });
    await bus.publish(task, {}, { subject: 'k' });
    await waitFor('handler started', () => started, 10_000);
    await bus.publish(granted, { early: true }, { subject: 'k' });
    await sleep(300); // read by now, queued behind the running handler of k
    release();
    await waitFor('resumed with the early event', () => got.length === 1, 10_000);
    assert.equal(got, [{ early: true }]);
    await sleep(200);
    assert.equal(others, [], 'the event the wait took runs no handler');
  });

  test('no match: WaitTimeoutError (WAIT_TIMEOUT) at the deadline, not before; an undeclared type is refused', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    const outcome: Array<{ err: unknown; at: number; began: number }> = [];
    let undeclared: unknown;
    await bus.subscribe({ group, types: [task], waitsFor: [granted], key: 'subject' }, async (_e, c) => {
      const ctx = c as KeyedDeliveryContext<Step | null>;
      undeclared = await ctx.waitFor(uniq('nobody'), { timeout: 100 }).catch((x: unknown) => x);
      const began = Date.now();
      try {
        await ctx.waitFor(granted, { timeout: 400 });
      } catch (err) {
        outcome.push({ err, at: Date.now(), began });
        ctx.state = { step: 'timed out' };
      }
    });
    await bus.publish(task, {}, { subject: 'k' });
    await waitFor('timed out', () => outcome.length === 1, 10_000);
    assert.ok(undeclared instanceof ValidationError && undeclared.code === 'INVALID_OPTION', `undeclared type refused: ${String(undeclared)}`);
    const { err, at, began } = outcome[0];
    assert.ok(err instanceof WaitTimeoutError, `got ${String(err)}`);
    assert.is((err as WaitTimeoutError).code, 'WAIT_TIMEOUT');
    const deadline = (err as WaitTimeoutError).deadline.getTime();
    assert.ok(at >= deadline, 'never before the deadline');
    assert.ok(deadline - began >= 350 && deadline - began <= 1500, `deadline ${deadline - began} ms after the wait began`);
    await waitFor('committed', async () => ((await bus.keys!.get(group, 'k'))?.state as Step | undefined)?.step === 'timed out', 10_000);
  });

  test('a retried handler finds its wait again: the recorded match returns at once, and the deadline is the first run\'s', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    const runs: Array<{ key: string; attempt: number; got?: unknown; err?: unknown; began: number }> = [];
    await bus.subscribe({ group, types: [task], waitsFor: [granted], key: 'subject', backoff: { initialMs: 50 } }, async (_e, c) => {
      const ctx = c as KeyedDeliveryContext<Step | null>;
      const run: (typeof runs)[number] = { key: ctx.key, attempt: ctx.attempt, began: Date.now() };
      runs.push(run);
      if (ctx.key === 'matched') {
        const m = await ctx.waitFor(granted, { timeout: '1m' });
        run.got = m.data;
        if (ctx.attempt === 1) throw new Error('fails after its wait: the retry must not wait again');
        ctx.state = { step: 'done', got: m.data };
        return;
      }
      // key 'late': the first attempt gives up on its wait after 300 ms (fails); the retry waits on to the first deadline
      const wait = ctx.waitFor(granted, { timeout: 1500 });
      if (ctx.attempt === 1) {
        wait.catch(() => {});
        await sleep(300);
        throw new Error('first attempt fails while waiting');
      }
      run.err = await wait.catch((x: unknown) => x);
      ctx.state = { step: 'timed out' };
    });
    await bus.publish(task, {}, { subject: 'matched' });
    await waitFor('matched waits', () => runs.some((r) => r.key === 'matched'), 10_000);
    await sleep(200);
    await bus.publish(granted, { n: 1 }, { subject: 'matched' });
    await waitFor('matched done', async () => ((await bus.keys!.get(group, 'matched'))?.state as Step | undefined)?.step === 'done', 10_000);
    const m = runs.filter((r) => r.key === 'matched');
    assert.equal(m.map((r) => [r.attempt, r.got]), [[1, { n: 1 }], [2, { n: 1 }]], 'the retry got the recorded match without another event');

    await bus.publish(task, {}, { subject: 'late' });
    await waitFor('late timed out', () => runs.some((r) => r.key === 'late' && r.err !== undefined), 10_000);
    const late = runs.filter((r) => r.key === 'late');
    assert.is(late.length, 2);
    const err = late[1].err as WaitTimeoutError;
    assert.ok(err instanceof WaitTimeoutError, `got ${String(err)}`);
    const fromFirst = err.deadline.getTime() - late[0].began;
    assert.ok(fromFirst >= 1400 && fromFirst <= 1900, `the deadline is the first run's: ${fromFirst} ms after it began`);
    assert.ok(err.deadline.getTime() - late[1].began < 1400, 'not the retry\'s now + timeout');
  });

  test('other keys keep running while one waits, even at concurrency 1 with an event queued behind it; the wait outlives claimIdleMs and timeoutMs and runs once', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    const handled: string[] = [];
    let waits = 0;
    await bus.subscribe(
      { group, types: [task], waitsFor: [granted], key: 'subject', concurrency: 1, claimIdleMs: 1000, timeoutMs: 500 },
      async (e: CloudEvent, c) => {
        const ctx = c as KeyedDeliveryContext<Step | null>;
        if (ctx.key === 'waiter') waits++;
        if (ctx.key === 'waiter' && (e.data as { n: number }).n === 0) await ctx.waitFor(granted, { timeout: 20_000 });
        handled.push(`${ctx.key}:${(e.data as { n: number }).n}`);
      },
    );
    await bus.publish(task, { n: 0 }, { subject: 'waiter' });
    await waitFor('waiting', () => waits === 1, 10_000);
    await bus.publishBatch(Array.from({ length: 5 }, (_, n) => ({ type: task, data: { n }, subject: `other${n}` })));
    await bus.publish(task, { n: 1 }, { subject: 'waiter' });
    await waitFor('other keys handled', () => handled.length === 5, 10_000);
    assert.ok(handled.every((h) => h.startsWith('other')), `only other keys so far (the waiter's next event queues behind it): ${handled}`);
    // Past claimIdleMs (lease renewed while waiting) and timeoutMs (not counted while waiting). claimIdleMs
    // is 1 s, not less: on a loaded machine a renewal can come 300 ms late, and a takeover runs the handler again.
    await sleep(1600);
    await bus.publish(granted, {}, { subject: 'waiter' });
    await waitFor('waiter done, then its next event', () => handled.length === 7, 10_000);
    assert.equal(handled.slice(5), ['waiter:0', 'waiter:1']);
    assert.is(waits, 2, 'the waiting handler ran once, then the key\'s next event');
  });

  test('readAhead 0, concurrency 1: events queued behind a waiting handler hold no slot, before, during and after the wait, as they come and go', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    const handled: string[] = [];
    await bus.subscribe({ group, types: [task], waitsFor: [granted], key: 'subject', concurrency: 1, readAhead: 0 }, async (e: CloudEvent, c) => {
      const ctx = c as KeyedDeliveryContext<null>;
      const n = (e.data as { n: number }).n;
      if (ctx.key === 'waiter' && n === 0) await ctx.waitFor(granted, { timeout: 20_000 });
      handled.push(`${ctx.key}:${n}`);
    });
    await bus.publish(task, { n: 0 }, { subject: 'waiter' });
    await bus.publishBatch([1, 2, 3].map((n) => ({ type: task, data: { n }, subject: 'waiter' })));
    await bus.publishBatch(Array.from({ length: 4 }, (_, n) => ({ type: task, data: { n }, subject: `other${n}` })));
    await waitFor('other keys handled past three queued behind the waiter', () => handled.length === 4, 10_000);
    assert.ok(handled.every((h) => h.startsWith('other')), `only other keys so far: ${handled}`);
    await bus.publish(granted, {}, { subject: 'waiter' });
    await waitFor('the waiter and its queue', () => handled.length === 8, 10_000);
    assert.equal(handled.slice(4), ['waiter:0', 'waiter:1', 'waiter:2', 'waiter:3']);
    // Nothing parked is left counted: one slot, one event at a time, as before the wait.
    await bus.publishBatch(Array.from({ length: 3 }, (_, n) => ({ type: task, data: { n: 10 + n }, subject: `late${n}` })));
    await waitFor('later keys handled', () => handled.length === 11, 10_000);
  });

  test('the wait records of a committed delivery are removed: an event of another topic with the same source and id (the same wait ids) waits anew', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const again = uniq('again');
    const granted = uniq('granted');
    const group = uniq('g');
    const results: Array<[string, unknown]> = [];
    let parked = 0;
    await bus.subscribe({ group, types: [task, again], waitsFor: [granted], key: 'subject' }, async (e, c) => {
      const ctx = c as KeyedDeliveryContext<number | null>;
      if (e.type === granted) return;
      parked++;
      const got = await ctx.waitFor(granted, { timeout: e.type === task ? 20_000 : 300 }).then((m) => m.data, (err: { code?: string }) => err.code);
      results.push([e.type === task ? 'task' : 'again', got]);
      ctx.state = (ctx.state ?? 0) + 1;
    });
    await bus.publish(task, {}, { subject: 'k', id: 'same-id', source: '/same' });
    await waitFor('parked', () => parked === 1, 10_000);
    await sleep(200);
    await bus.publish(granted, { n: 1 }, { subject: 'k' });
    await waitFor('committed', async () => (await bus.keys!.get(group, 'k'))?.state === 1, 10_000);
    await sleep(300); // the records are removed right after the commit is stored
    await bus.publish(again, {}, { subject: 'k', id: 'same-id', source: '/same' });
    await waitFor('second handled', () => results.length === 2, 10_000);
    assert.equal(results, [['task', { n: 1 }], ['again', 'WAIT_TIMEOUT']], 'no recorded match left behind for the same wait id');
  });

  test('bus.keys.waits lists a parked wait (not a step) with its key, type and recorded deadline; matched once an event is taken; gone after the commit', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const parked = new Set<string>();
    await bus.subscribe({ group, types: [task], waitsFor: [granted], key: 'subject', concurrency: 4 }, async (e, c) => {
      const ctx = c as KeyedDeliveryContext<number | null>;
      if (e.type !== task) return;
      await ctx.step('prepare', () => ctx.key); // a step's record is not a wait: not listed
      parked.add(ctx.key);
      await ctx.waitFor(granted, { timeout: ctx.key === 'b' ? '2h' : '1h' });
      await hold; // resumed, not yet committed: the record shows the match
      ctx.state = 1;
    });
    const before = Date.now();
    await bus.publish(task, {}, { subject: 'b' });
    await bus.publish(task, {}, { subject: 'a' });
    await waitFor('both parked', () => parked.size === 2, 10_000);
    let listed: Awaited<ReturnType<NonNullable<typeof bus.keys>['waits']>> = [];
    await waitFor('both listed', async () => (listed = await bus.keys!.waits(group)).length === 2, 10_000);
    assert.equal(listed.map((w) => [w.key, w.type, w.matched]), [['a', granted, false], ['b', granted, false]], 'by key');
    const hour = 3_600_000;
    assert.ok(Math.abs(listed[0].deadline.getTime() - (before + hour)) < 60_000, `a's deadline ${listed[0].deadline.toISOString()} is about an hour on`);
    assert.ok(Math.abs(listed[1].deadline.getTime() - (before + 2 * hour)) < 60_000, `b's deadline ${listed[1].deadline.toISOString()} is about two hours on`);
    assert.equal((await bus.keys!.waits(group, { key: 'b' })).map((w) => w.key), ['b'], 'one key');
    assert.equal((await bus.keys!.waits(group, { limit: 1 })).map((w) => w.key), ['a'], 'limit');
    await bus.publish(granted, {}, { subject: 'a' });
    await waitFor('a matched', async () => (await bus.keys!.waits(group, { key: 'a' }))[0]?.matched === true, 10_000);
    release();
    await waitFor('a committed', async () => (await bus.keys!.get(group, 'a'))?.state === 1, 10_000);
    await waitFor('a\'s record removed', async () => (await bus.keys!.waits(group)).map((w) => w.key).join() === 'b', 10_000);
    await bus.keys!.waits(group, { limit: 0 }).then(() => assert.unreachable('limit 0 accepted'), (err: Error) => assert.match(err.message, /limit/));
  });

  test.run();
}
