// Outcome observers (runtime/observers/) as plain functions: each fed DeliveryOutcomes by hand,
// no bus, no host. Metrics are read back from a real HostMetrics registry.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DeliveryOutcome } from '../bus/contract.js';
import { CircuitOpenError } from '../bus/errors.js';
import { HostMetrics } from '../runtime/metrics.js';
import { observeAll } from '../runtime/observers/observer.js';
import { countOutcomes } from '../runtime/observers/metrics.js';
import { logRetries } from '../runtime/observers/retry-log.js';
import { agentBreaker } from '../runtime/observers/breaker.js';

const base = { type: 'job.run', group: 'Worker', id: 'e1', position: '1', attempt: 1, durationMs: 2 };
const handled: DeliveryOutcome = { ...base, outcome: 'handled', retry: false };
const failed = (retry: boolean, error: unknown = new Error('boom')): DeliveryOutcome => ({ ...base, outcome: 'failed', retry, error });
const deadLettered: DeliveryOutcome = { ...base, outcome: 'dead_lettered', durationMs: 0, reason: 'failed', error: 'Error: boom' };

test('observeAll: each in order; one that throws stops none of the others, its error is thrown after', () => {
  const calls: string[] = [];
  const all = observeAll([() => void calls.push('a'), () => { calls.push('b'); throw new Error('b broke'); }, () => void calls.push('c')]);
  assert.throws(() => all(handled), /b broke/);
  assert.equal(calls, ['a', 'b', 'c']);
});

test('metrics: handled, failed, retried, dead-lettered by reason and handler time are counted', async () => {
  const m = new HostMetrics(async () => [], new Set(['Worker']));
  const observe = countOutcomes(m);
  for (const o of [handled, handled, failed(true), failed(false), deadLettered]) observe(o);
  const value = async (name: string, labels: Record<string, string> = {}) => {
    const got = (await m.registry.getSingleMetric(name)!.get()).values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x) && (v as { metricName?: string }).metricName !== `${name}_bucket`);
    return got?.value;
  };
  assert.is(await value('agentbus_events_handled_total', { type: 'job.run', group: 'Worker' }), 2);
  assert.is(await value('agentbus_events_failed_total'), 2);
  assert.is(await value('agentbus_events_retried_total'), 1);
  assert.is(await value('agentbus_events_dead_lettered_total', { reason: 'failed' }), 1);
  const count = (await m.registry.getSingleMetric('agentbus_handler_duration_seconds')!.get()).values.find((v) => (v as { metricName?: string }).metricName === 'agentbus_handler_duration_seconds_count');
  assert.is(count?.value, 4, 'every handler call timed; dead letters not');
});

test('metrics: handled deliveries between reads are added once per read, per type and group, in the scrape text too', async () => {
  const m = new HostMetrics(async () => [], new Set(['Worker']));
  const observe = countOutcomes(m);
  const handledOf = async (type: string, group: string) =>
    (await m.registry.getSingleMetric('agentbus_events_handled_total')!.get()).values.find((v) => v.labels.type === type && v.labels.group === group)?.value;
  for (let i = 0; i < 3; i++) observe(handled);
  observe({ ...handled, group: 'Other' });
  assert.is(await handledOf('job.run', 'Worker'), 3);
  assert.is(await handledOf('job.run', 'Worker'), 3, 'a second read adds nothing new');
  observe(handled);
  observe({ ...handled, type: 'job.other' });
  assert.match(await m.registry.metrics(), 'agentbus_events_handled_total{type="job.run",group="Worker"} 4');
  assert.is(await handledOf('job.run', 'Other'), 1);
  assert.is(await handledOf('job.other', 'Worker'), 1);
});

test('retry log: one warning per failure that gets another attempt; a final failure and other outcomes log nothing', () => {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) });
  const observe = logRetries(pino({ level: 'debug' }, stream));
  for (const o of [handled, failed(true), failed(false), deadLettered]) observe(o);
  assert.is(lines.length, 1);
  const [l] = lines;
  assert.equal([l.msg, l.level, l.group, l.id, l.type, l.attempt], ['delivery failed, will retry', 40, 'Worker', 'e1', 'job.run', 1]);
  assert.equal((l.err as { message: string }).message, 'boom');
});

test('breaker: trips once at the Nth failure in a row, with the last error as cause; a handled delivery starts the count again', () => {
  const trips: CircuitOpenError[] = [];
  const observe = agentBreaker('Worker', 3, (e) => void trips.push(e));
  for (const o of [failed(true), failed(true), handled, failed(true), deadLettered, failed(true)]) observe(o);
  assert.is(trips.length, 0, 'reset by the handled delivery; dead letters do not count');
  const last = new Error('last one');
  observe(failed(false, last));
  observe(failed(true));
  assert.is(trips.length, 1, 'trips once');
  assert.is(trips[0].code, 'CIRCUIT_OPEN');
  assert.is(trips[0].message, 'agent Worker: 3 deliveries failed in a row (last: Error: last one); circuit open');
  assert.is(trips[0].cause, last);
});

test('breaker: 0 failures turns it off', () => {
  let tripped = false;
  const observe = agentBreaker('Worker', 0, () => (tripped = true));
  for (let i = 0; i < 50; i++) observe(failed(true));
  assert.not.ok(tripped);
});

test.run();
