// ctx.step's refusals (bus/keyed/steps.ts), each naming the bad value and the limit: a bad name or
// function is refused before it takes an ordinal; a result JSON cannot encode, or over
// maxStateBytes, fails the step and records nothing (the retry calls the function again). On a real
// SQLite file.
import { mkdtempSync } from 'node:fs';
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
import { rejects, uniq, waitFor } from './helpers/index.js';

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

test('encodeStep: JSON of { v }, undefined as {}; BigInt and cycles refused naming the step; over maxBytes refused naming size and limit', () => {
  assert.is(encodeStep('a', { ok: true }, 100), '{"v":{"ok":true}}');
  assert.is(encodeStep('a', undefined, 100), '{}');
  assert.is(decodeStep(encodeStep('a', undefined, 100)), undefined);
  assert.is(decodeStep(encodeStep('a', null, 100)), null);
  assert.is(decodeStep(encodeStep('a', new Date(0), 100)), '1970-01-01T00:00:00.000Z');
  refused(() => encodeStep('big', 10n, 100), 'INVALID_OPTION', 'ctx.step "big"', 'cannot be recorded as JSON', 'BigInt');
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  refused(() => encodeStep('loop', cycle, 100), 'INVALID_OPTION', 'ctx.step "loop"', 'cannot be recorded as JSON');
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

test.run();
