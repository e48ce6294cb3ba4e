// OpenTelemetry's cost per event in the agent runtime: one backlog drained through a relay agent
// (each delivery handled and one event published: a consumer and a producer span per event) in
// AgentHost with tracing off, on with the API but no SDK (spans not recorded), and on with the SDK
// recording every span into a batch processor whose exporter drops them (the SDK's own cost, no
// network). Same SQLite file, one run. BENCH_ONLY=otel; BENCH_N events (default 50000).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { BaseAgent } from '../agents/base.js';
import type { HandlerContext } from '../agents/base.js';
import { AgentHost } from '../runtime/host.js';
import { printTable, rate, sample, type Row } from './util.js';

const N = Number(process.env.BENCH_N || 50_000);
const silent = pino({ level: 'silent' });

/** Takes every span and keeps none. */
const dropAll: SpanExporter = {
  export: (_spans: ReadableSpan[], done) => done({ code: 0 }),
  shutdown: async () => {},
};

export async function otelBench(): Promise<Row[]> {
  let seen = 0;
  let finish!: () => void;
  class Relay extends BaseAgent {
    static subscriptions = ['bench.otel'];
    static options = { from: 'earliest' as const, concurrency: 64 };
    async onBenchOtel(e: { data: unknown }, ctx: HandlerContext) {
      await ctx.publish('bench.otel.out', e.data);
      if (++seen === N) finish();
    }
  }
  /** One drain on a fresh file holding the same backlog, so no run meets a file the others grew. */
  async function drain(tracing: boolean): Promise<number> {
    const path = join(mkdtempSync(join(tmpdir(), 'agentbus-bench-otel-')), 'bus.db');
    const bus = await createSqliteBus({ path, logger: silent });
    for (let i = 0; i < N; i += 1000) await bus.publishBatch(Array.from({ length: 1000 }, (_, j) => ({ type: 'bench.otel', data: sample(i + j) })));
    seen = 0;
    const all = new Promise<void>((r) => (finish = r));
    const host = new AgentHost({ bus, agents: [Relay], logger: silent, catchUncaught: false, tracing });
    const t = performance.now();
    await host.start();
    await all;
    const r = rate(N, performance.now() - t);
    await host.stop();
    await bus.close();
    return r;
  }
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropAll, { maxQueueSize: 8192, maxExportBatchSize: 2048 })] });
  const runs = { off: [] as number[], noop: [] as number[], sdk: [] as number[] };
  for (let round = 0; round < 2; round++) {
    runs.off.push(await drain(false));
    runs.noop.push(await drain(true)); // the API present, no SDK registered: non-recording spans
    trace.setGlobalTracerProvider(provider);
    runs.sdk.push(await drain(true));
    trace.disable();
  }
  await provider.shutdown();
  const mean = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
  const [off, noop, sdk] = [mean(runs.off), mean(runs.noop), mean(runs.sdk)];
  if (process.env.BENCH_DEBUG) console.log(runs);
  const us = (r: number) => (1e6 / r - 1e6 / off).toFixed(1);
  const rows: Row[] = [
    { scenario: `relay agent (handle + publish), tracing on, API without SDK: +${us(noop)} µs/event (${N} events, mean of 2 alternated)`, agentbus: noop, baseline: off, baselineName: 'tracing off', goal: '-' },
    { scenario: `relay agent, tracing on, SDK recording 2 spans/event (batch processor, exporter drops): +${us(sdk)} µs/event`, agentbus: sdk, baseline: off, baselineName: 'tracing off', goal: '-' },
  ];
  printTable('OpenTelemetry (SQLite, AgentHost)', rows);
  return rows;
}
