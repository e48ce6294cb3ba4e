// OpenTelemetry across two real host processes (the built CLI) on one SQLite file, each with the
// SDK's in-memory exporter (test/fixtures/otel/setup.ts): the event a Starter agent publishes, agent
// A handling it in host 1 and publishing, agent B handling that in host 2 are one trace of
// producer and consumer spans, each a child of the previous; B's failed first attempt carries a
// retry event, A's ctx.deadLetter a dead-letter event. Needs `npm run build`.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { AgentHost, BaseAgent, NonRetryableError, RequestFailedError } from '../index.js';
import { uniq, waitFor } from './helpers/index.js';
import { startHost } from './helpers/host.js';

interface SpanLine {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes: Record<string, unknown> }>;
  status: number;
  pid: number;
}
const PRODUCER = 3;
const CONSUMER = 4;
const ERROR = 2;

const spans = (file: string): SpanLine[] => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8') || '[]') as SpanLine[]) : []);

test('one trace from the publisher through agent A (host 1) to agent B (host 2), with retry and dead-letter events', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentbus-otel-'));
  const type = uniq('otel');
  const store = { AGENTBUS_SQLITE_PATH: join(dir, 'bus.db'), OTEL_TYPE: type };
  const file1 = join(dir, 'spans-1.json');
  const file2 = join(dir, 'spans-2.json');
  const h2 = await startHost('test/fixtures/otel/second.ts', { ...store, OTEL_SPANS_FILE: file2 });
  const h1 = await startHost('test/fixtures/otel/first.ts', { ...store, OTEL_SPANS_FILE: file1 });
  try {
    await waitFor('B handled the event on its second attempt', () => spans(file2).filter((s) => s.kind === CONSUMER).length === 2, 20_000);
    await waitFor("A's publish and dead letter spans ended", () => spans(file1).filter((s) => s.name === `publish ${type}.next` || s.name === `process ${type}.bad`).length === 2, 10_000);
  } finally {
    h1.proc.kill('SIGTERM');
    h2.proc.kill('SIGTERM');
    await Promise.all([h1.exited, h2.exited]);
  }
  const one = spans(file1);
  const two = spans(file2);
  const find = (list: SpanLine[], name: string, kind: number) => {
    const s = list.find((x) => x.name === name && x.kind === kind);
    assert.ok(s, `no ${name} span (kind ${kind}) in ${JSON.stringify(list.map((x) => x.name))}`);
    return s!;
  };
  const published = find(one, `publish ${type}.start`, PRODUCER);
  const handledA = find(one, `process ${type}.start`, CONSUMER);
  const publishedA = find(one, `publish ${type}.next`, PRODUCER);
  const [failedB, handledB] = two.filter((s) => s.kind === CONSUMER).sort((x, y) => Number(x.attributes['agentbus.attempt']) - Number(y.attributes['agentbus.attempt']));

  // One trace, each hop the child of the one before, across the two processes.
  for (const s of [handledA, publishedA, failedB!, handledB!]) assert.is(s.traceId, published.traceId, `${s.name} in the publisher's trace`);
  assert.is(published.parentSpanId, undefined, 'the publish is the root');
  assert.is(handledA.parentSpanId, published.spanId);
  assert.is(publishedA.parentSpanId, handledA.spanId);
  assert.is(failedB!.parentSpanId, publishedA.spanId);
  assert.is(handledB!.parentSpanId, publishedA.spanId);
  assert.is.not(handledA.pid, handledB!.pid, 'A and B ran in different processes');

  // Messaging semantic conventions.
  assert.equal(
    { ...published.attributes },
    {
      'messaging.system': 'agentbus',
      'messaging.destination.name': `${type}.start`,
      'messaging.operation': 'publish',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish',
      'messaging.message.id': published.attributes['messaging.message.id'],
    },
  );
  assert.type(published.attributes['messaging.message.id'], 'string');
  assert.is(handledA.attributes['messaging.message.id'], published.attributes['messaging.message.id'], 'the consumer span names the message the producer span sent');
  assert.is(handledA.attributes['messaging.consumer.group.name'], 'A');
  assert.is(handledA.attributes['messaging.operation.type'], 'process');
  assert.is(handledB!.attributes['messaging.consumer.group.name'], 'B');
  assert.is(handledB!.attributes['messaging.message.id'], publishedA.attributes['messaging.message.id']);

  // Retries and dead letters are span events.
  assert.is(failedB!.status, ERROR);
  assert.equal(failedB!.events.map((e) => e.name), ['exception', 'agentbus.retry']);
  assert.equal(handledB!.events, []);
  assert.is(handledB!.attributes['agentbus.attempt'], 2);
  const refused = find(one, `process ${type}.bad`, CONSUMER);
  assert.equal(refused.events, [{ name: 'agentbus.dead_letter', attributes: { 'agentbus.dead_letter.reason': 'refused' } }]);
});

test('a handler past its timeoutMs: its span gets agentbus.timeout and the retry or dead letter, and ends at the timeout', async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  const type = uniq('otel.slow');
  const bus = await createSqliteBus({ path: join(mkdtempSync(join(tmpdir(), 'agentbus-otel-')), 'bus.db'), logger: pino({ level: 'silent' }) });
  class Slow extends BaseAgent {
    static subscriptions = [type];
    static options = { from: 'earliest' as const, timeoutMs: 100, maxAttempts: 2, backoff: { initialMs: 10, maxMs: 10 }, drainTimeoutMs: 100 };
    handle(): Promise<void> {
      return new Promise(() => {}); // never settles
    }
  }
  const host = new AgentHost({ bus, agents: [Slow], logger: pino({ level: 'silent' }), catchUncaught: false });
  try {
    await host.start();
    await bus.publish(type, { n: 1 });
    await waitFor('both attempts timed out and their spans ended', () => exporter.getFinishedSpans().filter((s) => s.name === `process ${type}`).length === 2, 10_000);
    const [first, last] = exporter
      .getFinishedSpans()
      .filter((s) => s.name === `process ${type}`)
      .sort((a, b) => Number(a.attributes['agentbus.attempt']) - Number(b.attributes['agentbus.attempt']));
    assert.equal(first!.events.map((e) => e.name), ['agentbus.timeout', 'exception', 'agentbus.retry']);
    assert.equal(last!.events.map((e) => e.name), ['agentbus.timeout', 'exception', 'agentbus.dead_letter']);
    assert.is(last!.status.code, 2);
  } finally {
    await host.stop();
    await bus.close();
    trace.disable();
    await provider.shutdown();
  }
});

// With a provider registered, handlers get the span middleware's context (a wrapper of the host's):
// the answer of an on<Type> method reached through a pattern used to need the host's own (it timed out).
test('with spans on, a request reached through a pattern is still answered by the agent\'s own on<Type> method (its return value) and failed at once by its dead letter', async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  const bus = await createSqliteBus({ path: join(mkdtempSync(join(tmpdir(), 'agentbus-otel-')), 'bus.db'), logger: pino({ level: 'silent' }) });
  class Tools extends BaseAgent {
    static subscriptions = ['tool.*'];
    onToolRun(e: { data: unknown }) {
      return { ran: e.data };
    }
    onToolBroken() {
      throw new NonRetryableError('tool broken');
    }
    handle() {}
  }
  const host = new AgentHost({ bus, agents: [Tools], logger: pino({ level: 'silent' }), catchUncaught: false });
  try {
    await host.start();
    assert.equal(await bus.request('tool.run', 7, { timeoutMs: 10_000 }), { ran: 7 });
    const failed = await bus.request('tool.broken', 0, { timeoutMs: 10_000 }).then(() => null, (x: unknown) => x);
    assert.ok(failed instanceof RequestFailedError, `got ${String(failed)}`);
  } finally {
    await host.stop();
    await bus.close();
    trace.disable();
    await provider.shutdown();
  }
});

test.run();
