// Durable steps of keyed handlers (ctx.step) on every adapter: a step's result is recorded before it
// returns, so a retry after a later failure gets it back without calling the step's function; every
// run gets the recorded JSON; the records go with the commit; steps and waits must come in the same
// order on every run.
import * as assert from 'uvu/assert';
import type { KeyedDeliveryContext } from '../../bus/keyed/contract.js';
import { ValidationError } from '../../bus/errors.js';
import { uniq, waitFor, sleep } from '../helpers/index.js';
import type { Target } from './index.js';

export function stepSuite(a: Target): void {
  const test = a.scenarios('durable steps (ctx.step)');

  test('a retry after a later failure returns the recorded results without calling the step again; the state commits them; the records go with the commit', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const again = uniq('again');
    const group = uniq('g');
    let calls = 0;
    const runs: Array<{ type: string; attempt: number; n: number; none: unknown; when: unknown }> = [];
    const sub = await bus.subscribe({ group, types: [task, again], key: 'subject', backoff: { initialMs: 50 } }, async (e, c) => {
      const ctx = c as KeyedDeliveryContext<unknown>;
      const n = await ctx.step('llm', async () => ++calls);
      const none = await ctx.step('nothing', () => undefined);
      const when = await ctx.step('when', () => new Date(0).toISOString()); // JSON data (a Date itself is refused)
      runs.push({ type: e.type === task ? 'task' : 'again', attempt: ctx.attempt, n, none, when });
      if (ctx.attempt === 1 && e.type === task) throw new Error('fails after its steps: the retry must not call them again');
      ctx.state = { n };
    });
    await bus.publish(task, {}, { subject: 'k', id: 'same-id', source: '/same' });
    await waitFor('committed', async () => (await bus.keys!.get(group, 'k'))?.state !== undefined, 10_000);
    const epoch = new Date(0).toISOString();
    assert.equal(runs, [
      { type: 'task', attempt: 1, n: 1, none: undefined, when: epoch },
      { type: 'task', attempt: 2, n: 1, none: undefined, when: epoch },
    ]);
    assert.is(calls, 1, 'the step ran once');
    assert.equal((await bus.keys!.get(group, 'k'))!.state, { n: 1 });
    assert.is(sub.keyedStats?.()?.stepsReplayed, 3, 'the retry replayed its three steps');
    await sleep(300); // the records are removed right after the commit is stored
    // Another topic, the same source and id: the same record ids. Nothing recorded is left for them.
    await bus.publish(again, {}, { subject: 'k', id: 'same-id', source: '/same' });
    await waitFor('second committed', async () => ((await bus.keys!.get(group, 'k'))?.state as { n: number } | undefined)?.n === 2, 10_000);
    assert.equal(runs[2], { type: 'again', attempt: 1, n: 2, none: undefined, when: epoch });
    assert.is(calls, 2, 'a fresh step, not the committed delivery\'s record');
  });

  test('a step that throws records nothing: the retry calls it again; steps and waitFor in another order than the first run are refused (INVALID_OPTION) naming both', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    const calls: string[] = [];
    const refused: Record<string, unknown> = {};
    const got: Record<string, unknown> = {};
    await bus.subscribe({ group, types: [task], waitsFor: [granted], key: 'subject', backoff: { initialMs: 50 }, maxAttempts: 3 }, async (_e, c) => {
      const ctx = c as KeyedDeliveryContext<unknown>;
      const first = ctx.attempt === 1;
      try {
        if (ctx.key === 'flaky') {
          got.flaky = await ctx.step('llm', () => {
            calls.push(`flaky ${ctx.attempt}`);
            if (first) throw new Error('model unavailable');
            return 'answer';
          });
        } else if (ctx.key === 'renamed') {
          await ctx.step(first ? 'a' : 'b', () => calls.push(`renamed ${ctx.attempt}`));
        } else if (ctx.key === 'wait-after-step') {
          if (first) await ctx.step('a', () => calls.push('wait-after-step 1'));
          else await ctx.waitFor(granted, { timeout: 100 });
        } else if (ctx.key === 'step-after-wait') {
          if (first) await ctx.waitFor(granted, { timeout: 100 }).catch(() => undefined);
          else await ctx.step('a', () => calls.push('step-after-wait 2'));
        }
      } catch (err) {
        if (first) throw err;
        refused[ctx.key] = err;
        return;
      }
      if (first) throw new Error('fails after its durable calls');
      ctx.state = 'done';
    });
    for (const k of ['flaky', 'renamed', 'wait-after-step', 'step-after-wait']) await bus.publish(task, {}, { subject: k });
    await waitFor('flaky done', async () => (await bus.keys!.get(group, 'flaky'))?.state === 'done', 10_000);
    await waitFor('three refused', () => Object.keys(refused).length === 3, 10_000);
    assert.equal(calls.sort(), ['flaky 1', 'flaky 2', 'renamed 1', 'wait-after-step 1'], 'the failed step ran again; no refused step ran');
    assert.is(got.flaky, 'answer');
    const check = (k: string, ...mentions: string[]) => {
      const err = refused[k] as ValidationError;
      assert.ok(err instanceof ValidationError && err.code === 'INVALID_OPTION', `${k}: ${String(err)}`);
      assert.is(err.retryable, false, `${k}: misuse, not retried`);
      for (const m of mentions) assert.ok(err.message.includes(m), `${k}: ${err.message} names ${m}`);
    };
    check('renamed', 'ctx.step "b"', 'ctx.step "a"', 'same order');
    check('wait-after-step', `waitFor ${granted}`, 'ctx.step "a"', 'same order');
    check('step-after-wait', 'ctx.step "a"', `waitFor ${granted}`, 'same order');
  });

  test.run();
}
