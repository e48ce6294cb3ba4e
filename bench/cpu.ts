// CPU time per event, which moves far less than wall-clock throughput on a shared machine: this
// process's user+system time (process.cpuUsage) and redis-server's (INFO cpu) over 100,000-event
// runs of publishBatch, publish() from 100 callers and a drain on each store, and an AgentHost drain
// on SQLite. Prints one JSON object. Used to compare two checkouts run alternately (copy this file
// into the other checkout's bench/): node --expose-gc --import tsx bench/cpu.ts
// CPU_ONLY=publish measures the publish lines only (no drains). A second JSON line gives what V8's
// collector did over each line (bench/gc.ts: scavenges, mark-compacts, GC main-thread ms, MB
// promoted to the old generation).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Bus } from '../bus/contract.js';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { BaseAgent } from '../agents/base.js';
import { AgentHost } from '../runtime/host.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { sample } from './util.js';
import { watchGc } from './gc.js';

const N = Number(process.env.BENCH_N || 100_000);
const drains = process.env.CPU_ONLY !== 'publish';
const silent = pino({ level: 'silent' });
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system); };
async function serverCpu(r: Redis): Promise<number> {
  const info = await r.info('cpu');
  const g = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)![1]);
  return (g('used_cpu_user') + g('used_cpu_sys')) * 1e6;
}
const out: Record<string, number> = {};
const gcs: Record<string, string> = {};
async function measure(name: string, fn: () => Promise<void>, r?: Redis) {
  global.gc?.();
  const s0 = r ? await serverCpu(r) : 0;
  const gcDone = watchGc();
  const c0 = cpu();
  await fn();
  out[name] = (cpu() - c0) / N;
  const gc = gcDone();
  gcs[name] = `${gc.scavenges} scav, ${gc.markCompacts} mc, ${gc.gcMs} ms, ${gc.promotedMB} MB promoted`;
  if (r) out[name + ' (redis-server)'] = ((await serverCpu(r)) - s0) / N;
}
async function drain(bus: Bus, type: string, group: string) {
  let n = 0; let done!: () => void; const all = new Promise<void>((r) => (done = r));
  const sub = await bus.subscribe({ group, types: [type], from: 'earliest', concurrency: 64 }, () => { if (++n === N) done(); });
  await all; await sub.close();
}
const batches = async (bus: Bus, type: string) => { for (let i = 0; i < N; i += 1000) await bus.publishBatch(Array.from({ length: 1000 }, (_, j) => ({ type, data: sample(i + j) }))); };

const server = await startRedisServer();
const r = new Redis(server.url);
const rbus = await createRedisBus({ url: server.url, logger: silent });
await measure('redis publishBatch', () => batches(rbus, 'p.batch'), r);
const singles = (bus: Bus) => Promise.all(Array.from({ length: 100 }, async (_, c) => { for (let i = 0; i < N / 100; i++) await bus.publish('p.single', sample(c * 10_000 + i)); })).then(() => {});
await measure('redis publish() x100 callers', () => singles(rbus), r);
if (drains) await measure('redis drain', () => drain(rbus, 'p.batch', 'g'), r);
await rbus.close(); r.disconnect(); await server.stop?.();

const path = join(mkdtempSync(join(tmpdir(), 'probe-')), 'bus.db');
const sbus = await createSqliteBus({ path, logger: silent });
await measure('sqlite publishBatch', () => batches(sbus, 'p.batch'));
await measure('sqlite publish() x100 callers', () => singles(sbus));
if (drains) await measure('sqlite drain', () => drain(sbus, 'p.batch', 'g'));
class Drain extends BaseAgent {
  static subscriptions = ['p.batch'];
  static options = { from: 'earliest' as const, concurrency: 64 };
  onPBatch() { if (++seen === N) fin(); }
}
let seen = 0; let fin!: () => void;
if (drains) await measure('sqlite AgentHost drain', async () => {
  const all = new Promise<void>((res) => (fin = res));
  const host = new AgentHost({ bus: sbus, agents: [{ agent: Drain, name: 'hostdrain' }], logger: silent, catchUncaught: false });
  await host.start(); await all; await host.stop();
});
await sbus.close();
console.log(JSON.stringify(out));
console.log(JSON.stringify({ gc: gcs }));
process.exit(0);
