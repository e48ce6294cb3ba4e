// Handler time limits and retry control (guarantee 6 of the actor brief) on every adapter:
// timeoutMs frees the slot of a handler that never settles; RetryLaterError / ctx.retryIn pick the
// next attempt's delay.
import * as assert from 'uvu/assert';
import { RetryLaterError, TimeoutError } from '../../bus/errors.js';
import { uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

export function timeSuite(a: Target): void {
  const test = a.scenarios('timeouts and retry control');

  test('timeoutMs: a handler that never settles fails its attempt, its signal aborts with a TimeoutError, and its slot serves the next event', async () => {
    const bus = await a.make();
    const type = uniq('tmo');
    const group = uniq('g');
    const seen: Array<[unknown, number]> = [];
    let reason: unknown;
    const failures: string[] = [];
    await bus.subscribe(
      { group, types: [type], concurrency: 1, timeoutMs: 200, backoff: { initialMs: 50, maxMs: 50 }, onOutcome: (o) => o.outcome === 'failed' && failures.push(String((o.error as Error).name)) },
      (e, ctx) => {
        seen.push([e.data, ctx.attempt]);
        if (e.data === 'hang' && ctx.attempt === 1) {
          ctx.signal.addEventListener('abort', () => (reason = ctx.signal.reason));
          return new Promise(() => {}); // ignores the signal: never settles
        }
      },
    );
    await bus.publish(type, 'hang');
    await bus.publish(type, 'next');
    await waitFor('both handled', () => seen.some(([d]) => d === 'next') && seen.some(([d, n]) => d === 'hang' && n === 2), 10_000);
    assert.ok(reason instanceof TimeoutError, 'the signal aborted with a TimeoutError');
    assert.equal(failures, ['TimeoutError']);
    assert.equal(seen[0], ['hang', 1]);
  });

  test('onOutcome marks timedOut on an attempt that ran past timeoutMs, not on a TimeoutError the handler threw itself', async () => {
    const bus = await a.make();
    const type = uniq('tmo');
    const outcomes: string[] = [];
    await bus.subscribe(
      { group: uniq('g'), types: [type], concurrency: 2, timeoutMs: 200, maxAttempts: 1, onOutcome: (o) => o.outcome === 'failed' && outcomes.push(`${(o.error as Error).name} ${o.timedOut === true}`) },
      (e) => {
        if (e.data === 'hang') return new Promise(() => {});
        throw new TimeoutError('my own call timed out');
      },
    );
    await bus.publish(type, 'hang');
    await bus.publish(type, 'own');
    await waitFor('both failed', () => outcomes.length === 2, 10_000);
    assert.equal(outcomes.sort(), ['TimeoutError false', 'TimeoutError true']);
  });

  test('RetryLaterError(ms) and ctx.retryIn(ms) set the next attempt\'s delay, count the attempt, and end as a dead letter after maxAttempts', async () => {
    const bus = await a.make();
    const type = uniq('later');
    const group = uniq('g');
    const at = new Map<string, number[]>();
    await bus.subscribe({ group, types: [type], concurrency: 2, maxAttempts: 3, backoff: { initialMs: 5000, maxMs: 5000 } }, (e, ctx) => {
      const k = e.data as string;
      at.set(k, [...(at.get(k) ?? []), Date.now()]);
      if (k === 'throw') throw new RetryLaterError(300);
      ctx.retryIn(300);
    });
    await bus.publishBatch([{ type, data: 'throw' }, { type, data: 'ctx' }]);
    await waitFor('two dead letters', async () => (await bus.deadLetters.list({ group })).length === 2, 10_000);
    for (const k of ['throw', 'ctx']) {
      const times = at.get(k)!;
      assert.is(times.length, 3, `${k}: three attempts`);
      for (let i = 1; i < 3; i++) {
        const gap = times[i] - times[i - 1];
        assert.ok(gap >= 290 && gap < 4000, `${k}: attempt ${i + 1} came ${gap} ms later (asked 300, backoff would be 5000)`);
      }
    }
    assert.throws(() => new RetryLaterError(-1), /invalid RetryLaterError delay -1/);
  });

  test.run();
}
