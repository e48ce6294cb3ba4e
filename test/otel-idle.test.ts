// OpenTelemetry with `@opentelemetry/api` loaded but no SDK registered (the API's no-op): the host
// starts no span per delivery or publish, handlers' publishes still carry the event's traceparent,
// and an SDK registered after the host started gets its spans from the next delivery on. Its own
// file: the process' tracing is loaded once, and here it must load before any SDK is registered.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProxyTracer, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import type { CloudEvent } from '../bus/event.js';
import { AgentHost, BaseAgent, type HandlerContext } from '../index.js';
import { uniq, waitFor } from './helpers/index.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const parent = (n: number) => `00-${TRACE_ID}-${String(n).padStart(16, '0')}-01`;

test('no SDK: no span started per delivery or publish, the traceparent still propagates; an SDK registered later gets the spans', async () => {
  // Every span the host asks the API for goes through the ProxyTracer it got without an SDK.
  let started = 0;
  const startSpan = ProxyTracer.prototype.startSpan;
  ProxyTracer.prototype.startSpan = function (this: ProxyTracer, ...args: Parameters<ProxyTracer['startSpan']>) {
    started++;
    return startSpan.apply(this, args);
  };
  const type = uniq('idle');
  const bus = await createSqliteBus({ path: join(mkdtempSync(join(tmpdir(), 'agentbus-otel-idle-')), 'bus.db'), logger: pino({ level: 'silent' }) });
  class Relay extends BaseAgent {
    static subscriptions = [type];
    static options = { from: 'earliest' as const };
    handle(event: CloudEvent<{ n: number }>, ctx: HandlerContext): Promise<unknown> {
      return ctx.publish(`${type}.out`, event.data);
    }
  }
  const out: CloudEvent<{ n: number }>[] = [];
  const sub = await bus.subscribe({ group: 'check', types: [`${type}.out`], from: 'earliest' }, (e) => void out.push(e as CloudEvent<{ n: number }>));
  const host = new AgentHost({ bus, agents: [Relay], logger: pino({ level: 'silent' }), catchUncaught: false });
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  try {
    await host.start();
    for (let n = 1; n <= 3; n++) await bus.publish(type, { n }, { traceparent: parent(n) });
    await waitFor('the relay published three events', () => out.length === 3);
    assert.is(started, 0, 'no span started while the API has no SDK');
    for (const e of out) assert.is(e.traceparent, parent(e.data.n), 'what the handler published carries the traceparent of the event it handled');

    trace.setGlobalTracerProvider(provider);
    await bus.publish(type, { n: 4 }, { traceparent: parent(4) });
    await waitFor('the fourth event relayed', () => out.length === 4);
    await waitFor('its consumer and producer spans ended', () => exporter.getFinishedSpans().length === 2);
    const consumed = exporter.getFinishedSpans().find((s) => s.name === `process ${type}`);
    const produced = exporter.getFinishedSpans().find((s) => s.name === `publish ${type}.out`);
    assert.ok(consumed && produced, `spans: ${exporter.getFinishedSpans().map((s) => s.name).join(', ')}`);
    assert.is(consumed!.spanContext().traceId, TRACE_ID, 'the consumer span continues the event\'s trace');
    assert.is(consumed!.parentSpanContext?.spanId, String(4).padStart(16, '0'));
    assert.is(produced!.parentSpanContext?.spanId, consumed!.spanContext().spanId, 'the publish is a child of the consumer span');
    assert.is(out[3]!.traceparent, `00-${TRACE_ID}-${produced!.spanContext().spanId}-01`, 'the stored event names the producer span');
  } finally {
    ProxyTracer.prototype.startSpan = startSpan;
    await host.stop();
    await sub.close();
    await bus.close();
    trace.disable();
    await provider.shutdown();
  }
});

test.run();
