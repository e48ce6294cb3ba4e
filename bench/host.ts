// The runtime's cost per event: draining one backlog through an agent in AgentHost (routing, the
// handler context, metrics, circuit-breaker bookkeeping) against a plain bus.subscribe handler, on
// the same SQLite file, in the same run. Beside the throughput, the CPU time per event of each
// drain (process.cpuUsage, user + system), which a shared machine moves far less than wall time.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { BaseAgent } from '../agents/base.js';
import { AgentHost } from '../runtime/host.js';
import { printTable, rate, sample, type Row } from './util.js';

const N = Number(process.env.BENCH_N || 200_000);
const silent = pino({ level: 'silent' });

export async function hostBench(): Promise<Row[]> {
  const path = join(mkdtempSync(join(tmpdir(), 'agentbus-bench-host-')), 'bus.db');
  const bus = await createSqliteBus({ path, logger: silent });
  for (let i = 0; i < N; i += 1000) await bus.publishBatch(Array.from({ length: 1000 }, (_, j) => ({ type: 'bench.host', data: sample(i + j) })));

  let seen = 0;
  let finish!: () => void;
  const drained = () => new Promise<void>((r) => (finish = r));
  const onEvent = () => {
    if (++seen === N) finish();
  };
  class Drain extends BaseAgent {
    static subscriptions = ['bench.host'];
    static options = { from: 'earliest' as const, concurrency: 64 };
    onBenchHost() {
      onEvent();
    }
  }
  /** CPU microseconds per event of each drain, from its start to its close (the host's stop). */
  const cpu = { plain: [] as number[], host: [] as number[] };
  const usPerEvent = (c0: NodeJS.CpuUsage) => {
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / N;
  };
  async function viaSubscribe(group: string): Promise<number> {
    seen = 0;
    const all = drained();
    const c0 = process.cpuUsage();
    const t = performance.now();
    const sub = await bus.subscribe({ group, types: ['bench.host'], from: 'earliest', concurrency: 64 }, onEvent);
    await all;
    const r = rate(N, performance.now() - t);
    await sub.close();
    cpu.plain.push(usPerEvent(c0));
    return r;
  }
  async function viaHost(name: string): Promise<number> {
    seen = 0;
    const all = drained();
    const host = new AgentHost({ bus, agents: [{ agent: Drain, name }], logger: silent, catchUncaught: false });
    const c0 = process.cpuUsage();
    const t = performance.now();
    await host.start();
    await all;
    const r = rate(N, performance.now() - t);
    await host.stop();
    cpu.host.push(usPerEvent(c0));
    return r;
  }
  // Alternated, so neither side always drains the file second (a later drain meets a larger file).
  const plainRuns = [await viaSubscribe('plain1')];
  const hostRuns = [await viaHost('host1')];
  hostRuns.push(await viaHost('host2'));
  plainRuns.push(await viaSubscribe('plain2'));
  const plain = Math.round((plainRuns[0] + plainRuns[1]) / 2);
  const hosted = Math.round((hostRuns[0] + hostRuns[1]) / 2);
  await bus.close();
  const rows: Row[] = [{ scenario: `drain a backlog through an agent in AgentHost, concurrency 64 (${N} events, mean of 2 alternated)`, agentbus: hosted, baseline: plain, baselineName: 'bus.subscribe, same file', goal: '-' }];
  printTable('Agent runtime (SQLite)', rows);
  const us = (runs: number[]) => `${(runs.reduce((a, b) => a + b, 0) / runs.length).toFixed(1)} us (${runs.map((x) => x.toFixed(1)).join(', ')})`;
  console.log(`\nCPU time per event of these drains (bench process, mean of the 2 runs): AgentHost ${us(cpu.host)}, bus.subscribe ${us(cpu.plain)}.`);
  return rows;
}
