// ctx.step's refusals (bus/keyed/steps.ts), each naming the bad value and the limit: a bad name or
// function is refused before it takes an ordinal; a result that is not JSON data (what JSON would
// change silently, or cannot encode), or over maxStateBytes, fails the step and records nothing (the retry calls the function again). On a real
// SQLite file.
import { mkdtempSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { ValidationError } from '../bus/errors.js';
import type { KeyedDeliveryContext } from '../bus/keyed/contract.js';
import type { CloudEvent } from '../bus/event.js';
import { checkStep, decodeStep, encodeStep } from '../bus/keyed/steps.js';
import { waitId } from '../bus/keyed/waits.js';
import { rejects, sleep, uniq, waitFor } from './helpers/index.js';

const logger = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'agentbus-steps-'));

function refused(f: () => unknown, code: string, ...mentions: string[]): void {
  try {
    f();
  } catch (err) {
    assert.instance(err, ValidationError);
    assert.is((err as ValidationError).code, code, String(err));
    for (const m of mentions) assert.ok((err as Error).message.includes(m), `${(err as Error).message} names ${m}`);
    return;
  }
  assert.unreachable(`not refused: ${code} ${mentions.join(', ')}`);
}

test('checkStep: a name of 1-200 characters and a function', () => {
  refused(() => checkStep('', () => 1), 'INVALID_OPTION', 'name of 0 characters', '1-200 characters');
  refused(() => checkStep('x'.repeat(201), () => 1), 'INVALID_OPTION', 'name of 201 characters', '1-200 characters');
  refused(() => checkStep(42, () => 1), 'INVALID_OPTION', 'name 42', '1-200 characters');
  refused(() => checkStep(undefined, () => 1), 'INVALID_OPTION', 'name undefined');
  refused(() => checkStep('llm', 'not a function'), 'INVALID_OPTION', 'ctx.step "llm" fn not a function', 'expected a function');
  checkStep('x'.repeat(200), () => 1);
});

test('encodeStep: JSON of { v }, undefined as {}; what JSON would change is refused naming the step and where; over maxBytes refused naming size and limit', () => {
  assert.is(encodeStep('a', { ok: true }, 100), '{"v":{"ok":true}}');
  assert.is(encodeStep('a', undefined, 100), '{}');
  assert.is(decodeStep(encodeStep('a', undefined, 100)), undefined);
  assert.is(decodeStep(encodeStep('a', null, 100)), null);
  assert.equal(decodeStep(encodeStep('a', { a: undefined, b: [1, 'x', null, { c: false }] }, 100)), { b: [1, 'x', null, { c: false }] }, 'an undefined property is dropped');
  assert.equal(decodeStep(encodeStep('a', Object.assign(Object.create(null), { n: 1 }), 100)), { n: 1 }, 'a null-prototype object is plain');
  const notJson = 'its result is not JSON data';
  refused(() => encodeStep('when', { at: new Date(0) }, 100), 'INVALID_OPTION', 'ctx.step "when"', notJson, 'a Date at .at', 'date.toISOString()', 'nothing was recorded');
  refused(() => encodeStep('m', { cache: new Map([[1, 2]]) }, 100), 'INVALID_OPTION', 'a Map at .cache');
  refused(() => encodeStep('s', [new Set()], 100), 'INVALID_OPTION', 'a Set at [0]');
  refused(() => encodeStep('n', { score: NaN }, 100), 'INVALID_OPTION', 'NaN at .score');
  refused(() => encodeStep('i', { x: [Infinity] }, 100), 'INVALID_OPTION', 'Infinity at .x[0]');
  refused(() => encodeStep('u', [1, undefined], 100), 'INVALID_OPTION', 'undefined at [1]');
  class Reply {
    label = 'refund';
  }
  refused(() => encodeStep('c', new Reply(), 100), 'INVALID_OPTION', 'an instance of Reply');
  refused(() => encodeStep('f', { run: () => 1 }, 100), 'INVALID_OPTION', 'a function at .run');
  refused(() => encodeStep('big', 10n, 100), 'INVALID_OPTION', 'ctx.step "big"', 'a bigint');
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  refused(() => encodeStep('loop', cycle, 100), 'INVALID_OPTION', 'ctx.step "loop"', 'a cycle at .self');
  const shared = { x: 1 };
  assert.is(encodeStep('dag', { a: shared, b: [shared] }, 100), '{"v":{"a":{"x":1},"b":[{"x":1}]}}', 'the same object twice is no cycle');
  assert.equal(decodeStep(encodeStep('realm', runInNewContext('({ a: [1, { b: 2 }] })'), 100)), { a: [1, { b: 2 }] }, 'a plain object of another realm is plain');
  assert.is(encodeStep('key', { 'a]': undefined }, 100), '{"v":{}}', 'a property named like an index is a property');
  let deep: unknown = 1;
  for (let i = 0; i < 150; i++) deep = { d: deep };
  assert.ok(encodeStep('deep', deep, 10_000).startsWith('{"v":{"d":'), 'nesting of 150 is JSON data');
  refused(() => encodeStep('llm', 'é'.repeat(60), 100), 'PAYLOAD_TOO_LARGE', 'ctx.step "llm"', '128 bytes as JSON', 'over maxStateBytes 100', 'nothing was recorded');
  assert.is(encodeStep('llm', 'x'.repeat(92), 100).length, 100, 'exactly at the limit is accepted');
});

test('through a keyed handler: a refused call rejects with INVALID_OPTION and takes no ordinal; a result over maxStateBytes fails the attempt, records nothing, and the retry calls the function again', async () => {
  const path = join(dir, 'bus.db');
  const bus = await createSqliteBus({ path, logger });
  const type = uniq('t');
  const group = uniq('g');
  const errors: unknown[] = [];
  const calls: number[] = [];
  const results: unknown[] = [];
  let records: unknown;
  let event!: CloudEvent;
  await bus.subscribe({ group, types: [type], key: 'subject', maxStateBytes: 100, backoff: { initialMs: 20 } }, async (e, c) => {
    event = e;
    const ctx = c as KeyedDeliveryContext<unknown>;
    errors.push(await ctx.step('', () => 1).catch((x: unknown) => x));
    errors.push(await ctx.step('bad fn', null as unknown as () => number).catch((x: unknown) => x));
    // The first call takes ordinal 0 (the refused ones took none): its record is the first wait id.
    results.push(await ctx.step('answer', () => (calls.push(ctx.attempt), ctx.attempt === 1 ? 'x'.repeat(200) : 'short')));
    const db = new Database(path, { readonly: true });
    records = db.prepare('SELECT id, type, matched FROM agent_wait WHERE grp = ?').all(group);
    db.close();
    ctx.state = 'done';
  });
  await bus.publish(type, {}, { subject: 'k' });
  await waitFor('committed', async () => (await bus.keys!.get(group, 'k'))?.state === 'done');
  assert.equal(calls, [1, 2], 'nothing recorded for the oversized result: the retry called the function again');
  assert.equal(results, ['short']);
  assert.equal(records, [{ id: waitId(group, event, 0), type: 'step answer', matched: '{"v":"short"}' }], 'one record, at ordinal 0');
  assert.is(errors.length, 4);
  for (const err of errors) assert.ok(err instanceof ValidationError && err.code === 'INVALID_OPTION', String(err));
  await rejects(() => Promise.reject(errors[1]), 'INVALID_OPTION', 'ctx.step "bad fn" fn null');
  await bus.close();
});

test('a request wrapped in a step is asked once: a retry after a later failure gets the recorded reply', async () => {
  const bus = await createSqliteBus({ path: join(dir, 'requests.db'), logger });
  const [ask, type, group] = [uniq('tool.run'), uniq('t'), uniq('g')];
  let asked = 0;
  const seen: unknown[] = [];
  await bus.subscribe({ group: uniq('Tool'), types: [ask] }, () => ({ n: ++asked }));
  await bus.subscribe({ group, types: [type], key: 'subject', backoff: { initialMs: 20 } }, async (_e, c) => {
    const ctx = c as KeyedDeliveryContext<unknown>;
    seen.push(await ctx.step('ask', () => bus.request(ask, { q: 1 }, { timeoutMs: 10_000 })));
    if (ctx.attempt === 1) throw new Error('fails after the reply is recorded');
    ctx.state = 'done';
  });
  await bus.publish(type, {}, { subject: 'k' });
  await waitFor('committed', async () => (await bus.keys!.get(group, 'k'))?.state === 'done');
  assert.equal(seen, [{ n: 1 }, { n: 1 }], 'the retry got the recorded reply');
  assert.is(asked, 1, 'the tool was asked once');
  await bus.close();
});

test('durable calls cannot nest inside a step\'s function (INVALID_OPTION naming both); steps side by side (Promise.all) still can; a step not awaited crashes nothing (a waitFor not awaited neither); one started after the handler returned is refused', async () => {
  const bus = await createSqliteBus({ path: join(dir, 'nest.db'), logger });
  const [type, granted, group] = [uniq('t'), uniq('granted'), uniq('g')];
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => void unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  const got: unknown[] = [];
  const after: string[] = [];
  let lateDone = false;
  try {
    await bus.subscribe({ group, types: [type], waitsFor: [granted], key: 'subject' }, async (_e, c) => {
      const ctx = c as KeyedDeliveryContext<unknown>;
      got.push(await ctx.step('outer', () => ctx.step('inner', () => 1)).catch((x: Error) => x.message));
      got.push(await ctx.step('outer2', () => ctx.waitFor(granted, { timeout: '1m' })).catch((x: Error) => x.message));
      got.push(await Promise.all([ctx.step('a', () => 'a'), ctx.step('b', async () => 'b')]));
      void ctx.step('late', () => sleep(300).then(() => (lateDone = true))); // not awaited: the commit removes its record first
      void ctx.waitFor(granted, { timeout: '1m' }); // not awaited: it ends with the handler
      setTimeout(() => void ctx.step('after', () => 1).catch((x: Error) => after.push(x.message)), 50);
      ctx.state = 'done';
    });
    await bus.publish(type, {}, { subject: 'k' });
    await waitFor('committed', async () => (await bus.keys!.get(group, 'k'))?.state === 'done');
    await waitFor('the late step ended', () => lateDone);
    await sleep(200);
    assert.match(String(got[0]), /^ctx\.step "inner" inside the function of ctx\.step "outer": durable calls cannot nest/);
    assert.match(String(got[1]), new RegExp(`^waitFor ${granted} inside the function of ctx\\.step "outer2": durable calls cannot nest`));
    assert.equal(got[2], ['a', 'b']);
    await waitFor('the step started after the return refused', () => after.length === 1);
    assert.match(after[0], /^ctx\.step "after" after its handler returned: await every durable call/);
    assert.equal((await bus.keys!.steps(group)).map((x) => x.name), [], 'no record left behind');
    assert.equal(unhandled, [], 'no unhandled rejection');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await bus.close();
  }
});

test('a durable call misused is not retried: the event is dead-lettered non_retryable after one attempt, its step function called once; a result over maxStateBytes is retried', async () => {
  const bus = await createSqliteBus({ path: join(dir, 'misuse.db'), logger });
  const [type, group] = [uniq('t'), uniq('g')];
  const calls: string[] = [];
  await bus.subscribe({ group, types: [type], key: 'subject', maxAttempts: 3, maxStateBytes: 64, backoff: { initialMs: 20 } }, async (_e, c) => {
    const ctx = c as KeyedDeliveryContext<unknown>;
    if (ctx.key === 'date') await ctx.step('when', () => (calls.push(`date ${ctx.attempt}`), new Date(0)));
    else if (ctx.key === 'undeclared') await ctx.waitFor(uniq('nobody'), { timeout: '1m' });
    else await ctx.step('big', () => (calls.push(`big ${ctx.attempt}`), 'x'.repeat(100)));
  });
  for (const k of ['date', 'undeclared', 'big']) await bus.publish(type, {}, { subject: k });
  await waitFor('three dead letters', async () => (await bus.deadLetters.list({ group })).length === 3, 10_000);
  const dls = await bus.deadLetters.list({ group });
  const of = (k: string) => dls.find((d) => d.event?.subject === k)!;
  assert.equal([of('date').reason, of('date').attempts], ['non_retryable', 1], of('date').error);
  assert.match(of('date').error, /its result is not JSON data: a Date;/);
  assert.equal([of('undeclared').reason, of('undeclared').attempts], ['non_retryable', 1], of('undeclared').error);
  assert.equal([of('big').reason, of('big').attempts], ['failed', 3], 'over maxStateBytes: retried');
  assert.equal(calls.sort(), ['big 1', 'big 2', 'big 3', 'date 1']);
  await bus.close();
});

test.run();
