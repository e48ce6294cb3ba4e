// Delayed publishes: how late a delayed event reaches its handler after its due time (p50, p99,
// max), agentbus on Redis and SQLite beside BullMQ delayed jobs on the same Redis server.
// BENCH_ONLY=delay npm run bench (not in the default run).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Queue, Worker } from 'bullmq';
import type { Bus } from '../bus/contract.js';
import { createRedisBus } from '../adapters/redis/index.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { percentile } from './util.js';

const N = Math.min(Number(process.env.BENCH_N || 2000), 20_000);
const silent = pino({ level: 'silent' });
/** Each event's delay: 200 ms to 1.2 s, spread so entries fall due one by one, not all at once. */
const delayOf = (i: number) => 200 + ((i * 7919) % 1000);
/** Publishes paced at about one per millisecond: an idle-ish host with a steady trickle of timers. */
const pace = () => new Promise((r) => setTimeout(r, 1));

/** One bus publishes, another (its own mover too) consumes: lateness = handled - (publish + delay). */
async function agentbusLateness(publisher: Bus, consumer: Bus): Promise<number[]> {
  const late: number[] = [];
  let finished!: () => void;
  const all = new Promise<void>((r) => (finished = r));
  const sub = await consumer.subscribe({ group: 'bench', types: ['bench.delay'], concurrency: 64 }, (e) => {
    const { due } = e.data as { due: number };
    late.push(Date.now() - due);
    if (late.length === N) finished();
  });
  for (let i = 0; i < N; i++) {
    const delay = delayOf(i);
    await publisher.publish('bench.delay', { due: Date.now() + delay }, { delay });
    if (i % 4 === 0) await pace();
  }
  await all;
  await sub.close();
  return late;
}

async function bullLateness(port: number): Promise<number[]> {
  const connection = { host: '127.0.0.1', port };
  const queue = new Queue('bench-delay', { connection });
  const late: number[] = [];
  let finished!: () => void;
  const all = new Promise<void>((r) => (finished = r));
  const worker = new Worker('bench-delay', async (job) => {
    late.push(Date.now() - (job.data as { due: number }).due);
    if (late.length === N) finished();
  }, { connection, concurrency: 64 });
  for (let i = 0; i < N; i++) {
    const delay = delayOf(i);
    await queue.add('e', { due: Date.now() + delay }, { delay });
    if (i % 4 === 0) await pace();
  }
  await all;
  await worker.close();
  await queue.close();
  return late;
}

export async function delayBench(): Promise<void> {
  const server = await startRedisServer();
  const rows: string[] = [];
  const row = (name: string, late: number[]) =>
    rows.push(`| ${name} | ${percentile(late, 50)} | ${percentile(late, 99)} | ${Math.max(...late)} | ${Math.min(...late)} |`);

  const [a, b] = [await createRedisBus({ url: server.url, logger: silent }), await createRedisBus({ url: server.url, logger: silent })];
  row('agentbus Redis, published and consumed by one bus', await agentbusLateness(a, a));
  row('agentbus Redis, published by another bus', await agentbusLateness(a, b));
  await a.close();
  await b.close();
  row('BullMQ delayed jobs, same server', await bullLateness(server.port));
  await server.stop();

  const path = join(mkdtempSync(join(tmpdir(), 'agentbus-bench-')), 'delay.db');
  const [s1, s2] = [await createSqliteBus({ path, logger: silent }), await createSqliteBus({ path, logger: silent })];
  row('agentbus SQLite, published and consumed by one bus', await agentbusLateness(s1, s1));
  row('agentbus SQLite, published by another bus', await agentbusLateness(s1, s2));
  await s1.close();
  await s2.close();

  console.log(`\n## Delayed publish: lateness after the due time (${N} events, delays 200-1200 ms, ~1 publish/ms)\n`);
  console.log('| scenario | p50 ms | p99 ms | max ms | min ms (never < 0) |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
}
