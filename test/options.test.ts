import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveBusOptions, resolveSubscribeOptions } from '../bus/options.js';
import { backoffDelay } from '../bus/backoff.js';
import { replayFrom, toStoreBound } from '../bus/bounds.js';
import { startOptions } from '../runtime/start.js';
import { resolveAgent } from '../runtime/agent-spec.js';
import { BaseAgent } from '../agents/base.js';

const message = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return `${(err as { code: string }).code}: ${(err as Error).message}`;
  }
  return assert.unreachable('expected an error') as never;
};

test('subscribe defaults', () => {
  const o = resolveSubscribeOptions({ group: 'g', types: ['a', 'a', 'b.*'] });
  assert.equal(o.types, ['a', 'b.*']);
  assert.is(o.concurrency, 1);
  assert.is(o.maxAttempts, 5);
  assert.is(o.claimIdleMs, 30_000);
  assert.is(o.from, 'latest');
  assert.is(o.orderBy, 'none');
  assert.equal(o.backoff, { initialMs: 100, maxMs: 30_000, factor: 2 });
  assert.ok(o.consumer.includes(`/${process.pid}/`));
});

test('bad options name the option, the value and what is accepted', () => {
  assert.is(message(() => resolveSubscribeOptions({ group: 'g', types: ['a'], maxAttempts: 1.5 })), 'INVALID_OPTION: invalid maxAttempts 1.5: expected an integer from 1 to 1000');
  assert.is(message(() => resolveSubscribeOptions({ group: 'g', types: ['a'], from: 'now' as never })), 'INVALID_OPTION: invalid from "now": expected one of latest, earliest');
  assert.is(message(() => resolveSubscribeOptions({ group: 'has space', types: ['a'] })), 'INVALID_OPTION: invalid group "has space": expected 1-200 characters of A-Z a-z 0-9 . _ : - / @');
  assert.is(message(() => resolveSubscribeOptions({ group: 'g', types: ['a'], backoff: { initialMs: -1 } })), 'INVALID_OPTION: invalid backoff.initialMs -1: expected an integer from 0 to 3600000');
  assert.is(message(() => resolveBusOptions({ retention: { maxLen: 0 } })), 'INVALID_OPTION: invalid retention.maxLen 0: expected an integer from 1 to 9007199254740991');
  assert.is(message(() => resolveBusOptions({ dedupWindow: 5 } as never)), 'INVALID_OPTION: unknown bus option "dedupWindow": did you mean dedupWindowMs? (expected one of source, maxPayloadBytes, dedupWindowMs, retention, logger, replyTopicIdleMs, moveDue)');
  // Nothing near: the list alone.
  assert.is(message(() => resolveBusOptions({ zzz: 5 } as never)), 'INVALID_OPTION: unknown bus option "zzz": expected one of source, maxPayloadBytes, dedupWindowMs, retention, logger, replyTopicIdleMs, moveDue');
  assert.is(message(() => resolveBusOptions({ moveDue: 'no' } as never)), 'INVALID_OPTION: invalid moveDue "no": expected true or false');
  assert.is(message(() => resolveBusOptions({ replyTopicIdleMs: 500 })), 'INVALID_OPTION: invalid replyTopicIdleMs 500: expected an integer from 2000 to 86400000');
  assert.is(resolveBusOptions({}).replyTopicIdleMs, 60_000);
  assert.is(resolveBusOptions({}).moveDue, true);
  assert.is(resolveBusOptions({}).maxPayloadBytes, 1024 * 1024);
  assert.is(resolveBusOptions({}).retention, null);
});

test('backoff grows exponentially, is capped, and keeps half of it fixed', () => {
  const o = { initialMs: 100, maxMs: 1000, factor: 2 };
  assert.equal([1, 2, 3, 4, 5].map((n) => backoffDelay(n, o, () => 0)), [50, 100, 200, 400, 500]);
  assert.equal([1, 2, 3, 4, 5].map((n) => backoffDelay(n, o, () => 1)), [100, 200, 400, 800, 1000]);
  assert.is(backoffDelay(2, o, () => 0.5), 150);
});

test('bounds: dates and epoch ms are times, digit strings and stream ids are positions, ISO strings are times', () => {
  assert.equal(toStoreBound('from', new Date(5)), { time: 5 });
  assert.equal(toStoreBound('from', 7), { time: 7 });
  assert.equal(toStoreBound('from', '42'), { position: '42' });
  assert.equal(toStoreBound('from', '1700000000000-3'), { position: '1700000000000-3' });
  assert.equal(toStoreBound('from', '2026-11-01T00:00:00Z'), { time: Date.UTC(2026, 10, 1) });
  assert.ok(message(() => toStoreBound('to', 'soon')).includes('invalid to "soon"'));
  assert.ok(message(() => toStoreBound('to', -1)).includes('invalid to -1'));
});

test("replay from: 'earliest' (as no from) is the oldest stored event, 'latest' is refused naming why, anything else is a bound", () => {
  assert.is(replayFrom('earliest'), null);
  assert.is(replayFrom(undefined), null);
  assert.equal(replayFrom('42'), { position: '42' });
  assert.is(
    message(() => replayFrom('latest')),
    `INVALID_OPTION: invalid replay from "latest": a replay hands over stored events and none lies after the latest; give 'earliest' (or no from) for the oldest stored event, or subscribe with from: 'latest' for new ones`,
  );
  assert.ok(message(() => replayFrom('soon')).includes('invalid from "soon"'));
});

test('agentbus start settings: an empty variable or flag counts as unset', () => {
  const defaults = { agents: './agents', port: 9464, httpHost: '127.0.0.1', strategy: undefined, exitOnFailure: false };
  assert.equal(startOptions({}, {}), defaults);
  const empty = { AGENTBUS_HTTP_HOST: '', AGENTBUS_HTTP_PORT: '', AGENTBUS_AGENTS: '', AGENTBUS_STRATEGY: '', AGENTBUS_EXIT_ON_FAILURE: '' };
  assert.equal(startOptions({}, empty), defaults);
  assert.equal(startOptions({ port: '', 'http-host': '', agents: '' }, {}), defaults);
  const set = startOptions({}, { AGENTBUS_HTTP_HOST: '0.0.0.0', AGENTBUS_HTTP_PORT: '0', AGENTBUS_AGENTS: 'x.ts', AGENTBUS_STRATEGY: 'one_for_all', AGENTBUS_EXIT_ON_FAILURE: '1' });
  assert.equal(set, { agents: 'x.ts', port: 0, httpHost: '0.0.0.0', strategy: 'one_for_all', exitOnFailure: true });
  assert.equal(startOptions({ port: '8080', 'http-host': '::1' }, { AGENTBUS_HTTP_PORT: '9000', AGENTBUS_HTTP_HOST: '' }).port, 8080, 'a flag beats the variable');
  assert.is(message(() => startOptions({}, { AGENTBUS_HTTP_PORT: 'abc' })), 'INVALID_OPTION: invalid port (--port, AGENTBUS_HTTP_PORT) "abc": expected an integer from 0 to 65535');
});

test('an option given as undefined counts as not given (exactOptionalPropertyTypes lets callers pass one)', () => {
  const o = resolveSubscribeOptions({ group: 'g', types: ['a'], concurrency: undefined, from: undefined, backoff: { initialMs: undefined } });
  assert.equal([o.concurrency, o.from, o.backoff.initialMs], [1, 'latest', 100]);
  assert.is(resolveBusOptions({ source: undefined, retention: undefined }).source.startsWith('/agentbus/'), true);
  class Agent extends BaseAgent {
    static subscriptions = ['a'];
    static options = { concurrency: 8 };
    onA() {}
  }
  // An entry's undefined option leaves the class' value instead of replacing it with the default.
  const a = resolveAgent({ agent: Agent, options: { concurrency: undefined, maxAttempts: 2 }, restart: undefined });
  assert.equal([a.subscribe.concurrency, a.subscribe.maxAttempts, a.restart], [8, 2, 'permanent']);
});

test.run();
