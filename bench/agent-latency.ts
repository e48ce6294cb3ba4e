// How concurrency serves agents whose handler waits on something slow (an LLM call, an HTTP API):
// an agent whose handler awaits a timer drains a backlog of events at concurrency 1, 8 and 16, and
// at 16 with orderBy 'subject' over 10 subjects (per-conversation order). Not part of `npm run bench`;
// run it alone: node --import tsx bench/agent-latency.ts  (BENCH_N events, default 100; BENCH_WAIT_MS, default 200).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { BaseAgent, type AgentOptions } from '../agents/base.js';
import { AgentHost } from '../runtime/host.js';

const N = Number(process.env.BENCH_N || 100);
const WAIT = Number(process.env.BENCH_WAIT_MS || 200);
const silent = pino({ level: 'silent' });
const bus = await createSqliteBus({ path: join(mkdtempSync(join(tmpdir(), 'agentbus-bench-latency-')), 'bus.db'), logger: silent });
await bus.publishBatch(Array.from({ length: N }, (_, i) => ({ type: 'bench.slow', data: { i }, subject: `conversation-${i % 10}` })));

let done = 0;
let finish: () => void = () => {};
class Slow extends BaseAgent {
  static subscriptions = ['bench.slow'];
  async onBenchSlow(): Promise<void> {
    await sleep(WAIT); // the LLM call
    if (++done === N) finish();
  }
}

console.log(`# ${N} events, handler awaits ${WAIT} ms\n\n| options | wall time | events/s | ideal: N x wait / handlers at once |\n|---|---|---|---|`);
const runs: [string, AgentOptions][] = [
  ['concurrency 1', { concurrency: 1 }],
  ['concurrency 8', { concurrency: 8 }],
  ['concurrency 16', { concurrency: 16 }],
  ["concurrency 16, orderBy 'subject', 10 subjects", { concurrency: 16, orderBy: 'subject' }],
];
for (const [label, options] of runs) {
  done = 0;
  const all = new Promise<void>((r) => (finish = r));
  const host = new AgentHost({ bus, agents: [{ agent: Slow, name: `slow-${label.replace(/\W+/g, '-')}`, options: { ...options, from: 'earliest' } }], logger: silent, catchUncaught: false });
  const t = performance.now();
  await host.start();
  await all;
  const ms = performance.now() - t;
  await host.stop();
  const width = Math.min(options.concurrency ?? 1, options.orderBy === 'subject' ? 10 : Infinity);
  console.log(`| ${label} | ${(ms / 1000).toFixed(2)} s | ${((N * 1000) / ms).toFixed(1)} | ${((N * WAIT) / width / 1000).toFixed(2)} s |`);
}
await bus.close();
