import * as assert from 'uvu/assert';
import { NonRetryableError } from '../../bus/errors.js';
import { assertSameIds, sleep, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

const fast = { initialMs: 5, maxMs: 20 };

export function failureSuite(a: Target): void {
  const test = a.scenarios('failures and dead letters');

  test('a throwing handler is retried until it succeeds; attempts counted', async () => {
    const bus = await a.make();
    const type = uniq('flaky');
    const group = uniq('g');
    const seen = new Map<string, number[]>();
    const done: string[] = [];
    const sub = await bus.subscribe({ group, types: [type], concurrency: 4, maxAttempts: 5, backoff: fast }, (e, ctx) => {
      seen.set(e.id, [...(seen.get(e.id) ?? []), ctx.attempt]);
      if (ctx.attempt < 3) throw new Error(`fail ${ctx.attempt}`);
      done.push(e.id);
    });
    const ids = await bus.publishBatch(Array.from({ length: 10 }, (_, i) => ({ type, data: i })));
    await waitFor('10 successes', () => done.length >= 10);
    assertSameIds(done, ids);
    for (const id of ids) assert.equal(seen.get(id), [1, 2, 3], `attempts of ${id}`);
    assert.equal(await bus.deadLetters.list({ group }), []);
    await sub.close();
    await bus.close();
  });

  test('after maxAttempts: a dead letter with error, attempts and group; the group moves on', async () => {
    const bus = await a.make();
    const type = uniq('poison');
    const group = uniq('g');
    const ok: number[] = [];
    let badCalls = 0;
    const sub = await bus.subscribe({ group, types: [type], concurrency: 1, maxAttempts: 3, backoff: fast }, (e) => {
      if ((e.data as { bad?: boolean }).bad) {
        badCalls++;
        throw new Error('cannot parse invoice');
      }
      ok.push((e.data as { n: number }).n);
    });
    const [badId] = await bus.publishBatch([{ type, data: { bad: true } }, ...[1, 2, 3, 4, 5].map((n) => ({ type, data: { n } }))]);
    await waitFor('5 good events and the dead letter', async () => ok.length >= 5 && (await bus.deadLetters.list({ group })).length === 1);
    assert.equal(ok, [1, 2, 3, 4, 5]);
    assert.is(badCalls, 3);
    const [dl] = await bus.deadLetters.list({ group });
    assert.is(dl.event?.id, badId);
    assert.is(dl.group, group);
    assert.is(dl.type, type);
    assert.is(dl.reason, 'failed');
    assert.is(dl.attempts, 3);
    assert.ok(dl.error.includes('cannot parse invoice'), dl.error);
    assert.ok(Date.parse(dl.failedAt!) > Date.now() - 60_000);
    assert.equal(await bus.deadLetters.get(dl.id), dl);
    const stats = (await bus.stats()).find((s) => s.type === type)!;
    const g = stats.groups.find((x) => x.group === group)!;
    assert.is(g.deadLetters, 1);
    assert.is(g.pending, 0);
    await sub.close();
    await bus.close();
  });

  test('ctx.deadLetter and NonRetryableError dead-letter at once', async () => {
    const bus = await a.make();
    const type = uniq('reject');
    const group = uniq('g');
    let calls = 0;
    const sub = await bus.subscribe({ group, types: [type], maxAttempts: 5, backoff: fast }, (e, ctx) => {
      calls++;
      if (e.data === 'ctx') ctx.deadLetter('schema mismatch');
      else throw new NonRetryableError('account closed');
    });
    await bus.publish(type, 'ctx');
    await bus.publish(type, 'throw');
    await waitFor('two dead letters', async () => (await bus.deadLetters.list({ group })).length === 2);
    const dls = await bus.deadLetters.list({ group });
    assert.is(calls, 2);
    assert.equal(dls.map((d) => [d.reason, d.attempts]), [['schema mismatch', 1], ['non_retryable', 1]]);
    assert.ok(dls[1].error.includes('account closed'));
    await sub.close();
    await bus.close();
  });

  test('a dead letter keeps the thrown error\'s stack (with its causes, at most 8192 characters), so do replay failures; ctx.deadLetter and non-Errors keep none', async () => {
    const bus = await a.make();
    const type = uniq('stack');
    const group = uniq('g');
    const sub = await bus.subscribe({ group, types: [type], maxAttempts: 1 }, (e, ctx) => {
      if (e.data === 'plain') throw new Error('plain failure', { cause: new TypeError('root cause') });
      if (e.data === 'huge') throw new Error('x'.repeat(100_000));
      if (e.data === 'ctx') return ctx.deadLetter('refused');
      throw 'a string';
    });
    for (const k of ['plain', 'huge', 'ctx', 'string']) await bus.publish(type, k);
    await waitFor('4 dead letters', async () => (await bus.deadLetters.list({ group })).length === 4);
    const by = new Map((await bus.deadLetters.list({ group })).map((d) => [d.event!.data, d]));
    const plain = by.get('plain')!;
    assert.ok(plain.stack!.startsWith('Error: plain failure\n    at '), plain.stack);
    assert.ok(plain.stack!.includes('conformance/failures.ts:'), `names the file that threw: ${plain.stack}`);
    assert.ok(plain.stack!.includes('\ncaused by: TypeError: root cause\n    at '), plain.stack);
    assert.is(plain.error, 'Error: plain failure');
    assert.equal(await bus.deadLetters.get(plain.id), plain);
    const huge = by.get('huge')!.stack!;
    assert.ok(huge.length <= 8192 && huge.startsWith('Error: xxx') && /\.\.\. \(cut: \d+ characters\)$/.test(huge), `${huge.length} characters, ends ${huge.slice(-40)}`);
    for (const k of ['ctx', 'string']) assert.not.ok('stack' in by.get(k)!, `${k}: no stack`);
    const r = await bus.replay({ types: [type] }, (e) => {
      if (e.data === 'plain') throw new Error('replayed failure');
    });
    assert.is(r.failed.length, 1);
    assert.ok(r.failed[0].stack!.startsWith('Error: replayed failure\n') && r.failed[0].stack!.includes('conformance/failures.ts:'), r.failed[0].stack);
    await sub.close();
    await bus.close();
  });

  test('dead-letter retry reaches the failing group only; purge removes', async () => {
    const bus = await a.make();
    const type = uniq('payment');
    const [failing, healthy] = [uniq('billing'), uniq('audit')];
    let broken = true;
    const billing: string[] = [];
    const audit: string[] = [];
    const s1 = await bus.subscribe({ group: failing, types: [type], maxAttempts: 2, backoff: fast }, (e) => {
      if (broken) throw new Error('billing down');
      billing.push(e.id);
    });
    const s2 = await bus.subscribe({ group: healthy, types: [type] }, (e) => void audit.push(e.id));
    const [id, other] = [await bus.publish(type, { amount: 5 }), await bus.publish(type, { amount: 7 })];
    await waitFor('2 dead letters', async () => (await bus.deadLetters.list({ group: failing, type })).length === 2);
    await waitFor('audit handled both', () => audit.length === 2);
    assert.equal(await bus.deadLetters.list({ group: healthy }), []);
    broken = false;
    const dls = await bus.deadLetters.list({ group: failing });
    const retryOne = dls.find((d) => d.event?.id === id)!;
    assert.is(await bus.deadLetters.retry([retryOne.id]), 1);
    await waitFor('billing handled the retried event', () => billing.length === 1);
    await sleep(300);
    assert.equal(billing, [id]);
    assert.equal(audit.sort(), [id, other].sort(), 'the healthy group saw the retried event again');
    const left = await bus.deadLetters.list({ group: failing });
    assert.equal(left.map((d) => d.event?.id), [other]);
    assert.is(await bus.deadLetters.purge([left[0].id]), 1);
    assert.equal(await bus.deadLetters.list({ group: failing }), []);
    assert.is(await bus.deadLetters.get(left[0].id), null);
    assert.is(await bus.deadLetters.retry([left[0].id]), 0, 'retry of a purged dead letter does nothing');
    await Promise.all([s1.close(), s2.close()]);
    await bus.close();
  });

  test('a retried dead letter whose event fails again is a new dead letter: a new id, the same event and group, fresh attempts; the old id names nothing', async () => {
    const bus = await a.make();
    const type = uniq('refund');
    const group = uniq('refunds');
    const attempts: number[] = [];
    const sub = await bus.subscribe({ group, types: [type], maxAttempts: 2, backoff: fast }, (_e, ctx) => {
      attempts.push(ctx.attempt);
      throw new Error('refunds still down');
    });
    const id = await bus.publish(type, { amount: 3 });
    await waitFor('a dead letter', async () => (await bus.deadLetters.list({ group })).length === 1);
    const [first] = await bus.deadLetters.list({ group });
    assert.is(await bus.deadLetters.retry([first.id]), 1);
    assert.is(await bus.deadLetters.get(first.id), null, 'the retried id names nothing');
    await waitFor('dead-lettered again', async () => (await bus.deadLetters.list({ group })).length === 1);
    const [again] = await bus.deadLetters.list({ group });
    assert.is.not(again.id, first.id, 'a new dead letter id');
    assert.equal([again.event?.id, again.group, again.type, again.attempts, again.reason], [id, group, type, 2, 'failed']);
    assert.equal(attempts, [1, 2, 1, 2], 'fresh attempts after the retry');
    assert.is(await bus.deadLetters.get(first.id), null, 'the old id still names nothing');
    assert.is(await bus.deadLetters.retry([first.id]), 0, 'retrying the old id does nothing');
    await sub.close();
    await bus.close();
  });

  test('a handler throwing a value String() cannot convert is retried and dead-lettered with a readable error; the process goes on', async () => {
    const bus = await a.make();
    const type = uniq('odd.throw');
    const group = uniq('g');
    const unprintable = () => {
      const o = Object.create(null) as Record<string, unknown>;
      o.code = 42;
      return o;
    };
    const hostile = { toString() { throw new Error('toString refuses'); } };
    const attempts: number[] = [];
    const outcomes: string[] = [];
    const sub = await bus.subscribe({ group, types: [type], maxAttempts: 2, backoff: fast, onOutcome: (o) => void outcomes.push(o.outcome) }, (e, ctx) => {
      attempts.push(ctx.attempt);
      throw e.data === 'null-proto' ? unprintable() : hostile;
    });
    await bus.publish(type, 'null-proto');
    await bus.publish(type, 'hostile');
    await waitFor('two dead letters', async () => (await bus.deadLetters.list({ group })).length === 2);
    const dls = await bus.deadLetters.list({ group });
    assert.equal(attempts.sort(), [1, 1, 2, 2]);
    assert.equal(dls.map((d) => [d.reason, d.attempts]), [['failed', 2], ['failed', 2]]);
    for (const d of dls) assert.ok(d.error.length > 0 && d.error.length < 200, d.error);
    assert.ok(dls.some((d) => d.error.includes('"code":42')), dls.map((d) => d.error).join(' | '));
    const replay = await bus.replay({ types: [type] }, () => {
      throw unprintable();
    });
    assert.is(replay.failed.length, 2);
    assert.ok(replay.failed[0].error.includes('"code":42'), replay.failed[0].error);
    assert.equal(outcomes.filter((o) => o === 'dead_lettered').length, 2);
    await sub.close();
    await bus.close();
  });

  test('a malformed stored entry becomes a dead letter "malformed" and the consumer goes on', async () => {
    const bus = await a.make();
    const type = uniq('foreign');
    const group = uniq('g');
    await bus.publish(type, 'before');
    await a.store.injectMalformed(type);
    await bus.publish(type, 'after');
    const got: unknown[] = [];
    const sub = await bus.subscribe({ group, types: [type], from: 'earliest' }, (e) => void got.push(e.data));
    await waitFor('2 good events', () => got.length >= 2);
    await waitFor('the malformed dead letter', async () => (await bus.deadLetters.list({ group })).length === 1);
    assert.equal(got, ['before', 'after']);
    const [dl] = await bus.deadLetters.list({ group });
    assert.is(dl.reason, 'malformed');
    assert.is(dl.event, null);
    assert.ok(dl.raw && dl.raw.length > 0, 'the raw entry is kept');
    assert.ok(dl.error.length > 0);
    await sub.close();
    await bus.close();
  });

  test.run();
}
