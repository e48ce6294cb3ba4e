// Delayed publishes, agentbus on Redis and SQLite beside BullMQ delayed jobs on the same Redis server:
// - lateness: how late a delayed event reaches its handler after its due time (p50, p99, max);
// - publish throughput: BULK delayed publishes (publishBatch of 1000, and publish() from 100
//   concurrent callers) beside BullMQ's addBulk of 1000 and add() from 100 callers;
// - move throughput: a backlog of BULK entries all due at one time, how long until all are in their
//   topic (BullMQ: promoted out of the delayed set) and until all are handled.
// BENCH_ONLY=delay npm run bench (not in the default run). BENCH_N sets the lateness count (default
// 2000), BENCH_DELAY_BULK the throughput and backlog count (default 20000).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Bus } from '../bus/contract.js';
import { createRedisBus } from '../adapters/redis/index.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { percentile, rate } from './util.js';

const N = Math.min(Number(process.env.BENCH_N || 2000), 20_000);
const BULK = Math.min(Number(process.env.BENCH_DELAY_BULK || 20_000), 200_000);
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

/** Batches of publishBatch and addBulk. */
const BATCH = 1000;
/** Concurrent callers of publish() and add(). */
const CALLERS = 100;
/**
 * Throughput publishes' delays: 30 s plus 0-5 s spread over the entries, so none falls due (and no
 * mover competes) while the publishes are measured; the store is emptied after each.
 */
const farDelay = (i: number) => 30_000 + ((i * 7919) % 5000);

/** `count` calls of `one(i)` from CALLERS concurrent loops; resolves when all are done. */
async function fromCallers(count: number, one: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: CALLERS }, async () => {
    while (next < count) await one(next++);
  }));
}

/** Milliseconds `run` takes. */
async function timed(run: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

/** BULK delayed publishes through `bus`, batched or from 100 callers; the elapsed ms. */
function agentbusPublish(bus: Bus, how: 'batch' | 'callers'): Promise<number> {
  const type = `bench.delay.${how}`;
  if (how === 'callers') return timed(() => fromCallers(BULK, (i) => bus.publish(type, { i }, { delay: farDelay(i) })));
  return timed(async () => {
    for (let i = 0; i < BULK; i += BATCH) {
      await bus.publishBatch(Array.from({ length: Math.min(BATCH, BULK - i) }, (_, j) => ({ type, data: { i: i + j }, delay: farDelay(i + j) })));
    }
  });
}

async function bullPublish(port: number, how: 'batch' | 'callers'): Promise<number> {
  const queue = new Queue(`bench-delay-${how}`, { connection: { host: '127.0.0.1', port } });
  await queue.waitUntilReady();
  try {
    if (how === 'callers') return await timed(() => fromCallers(BULK, (i) => queue.add('e', { i }, { delay: farDelay(i) })));
    return await timed(async () => {
      for (let i = 0; i < BULK; i += BATCH) {
        await queue.addBulk(Array.from({ length: Math.min(BATCH, BULK - i) }, (_, j) => ({ name: 'e', data: { i: i + j }, opts: { delay: farDelay(i + j) } })));
      }
    });
  } finally {
    await queue.close();
  }
}

/** How long until a backlog of BULK entries, all due at `dueAt`, is moved (in its topic / promoted) and handled, ms after dueAt. */
interface MoveResult { moved: number; handled: number; publishedBy: number }

/**
 * `publisher` stores BULK events (batches of 1000), all due at one time a few seconds ahead, while
 * `consumer` (a second bus: both run movers) waits in a group at concurrency 64. Moved: the topic
 * holds them all (bus.stats() polled every 20 ms); handled: the handler saw the last one.
 */
async function agentbusMove(publisher: Bus, consumer: Bus, type: string): Promise<MoveResult> {
  let handled = 0;
  let allHandled!: () => void;
  const done = new Promise<void>((r) => (allHandled = r));
  const sub = await consumer.subscribe({ group: 'bench', types: [type], concurrency: 64 }, () => {
    if (++handled === BULK) allHandled();
  });
  const dueAt = Date.now() + 3000 + Math.ceil(BULK / 5);
  for (let i = 0; i < BULK; i += BATCH) {
    await publisher.publishBatch(Array.from({ length: Math.min(BATCH, BULK - i) }, (_, j) => ({ type, data: { i: i + j }, at: dueAt })));
  }
  const publishedBy = dueAt - Date.now();
  let moved = 0;
  const inTopic = (async () => {
    for (;;) {
      const t = (await publisher.stats()).find((s) => s.type === type);
      if (t && t.length >= BULK) return void (moved = Date.now() - dueAt);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await Promise.all([inTopic, done]);
  const handledAt = Date.now() - dueAt;
  await sub.close();
  return { moved, handled: handledAt, publishedBy };
}

/** BullMQ: BULK jobs (addBulk of 1000), each delayed to one due time; promoted: the delayed count is 0 (polled every 20 ms). */
async function bullMove(port: number): Promise<MoveResult> {
  const connection = { host: '127.0.0.1', port };
  const queue = new Queue('bench-delay-move', { connection });
  let handled = 0;
  let allHandled!: () => void;
  const done = new Promise<void>((r) => (allHandled = r));
  const worker = new Worker('bench-delay-move', async () => {
    if (++handled === BULK) allHandled();
  }, { connection, concurrency: 64 });
  await worker.waitUntilReady();
  const dueAt = Date.now() + 3000 + Math.ceil(BULK / 5);
  for (let i = 0; i < BULK; i += BATCH) {
    const delay = dueAt - Date.now();
    await queue.addBulk(Array.from({ length: Math.min(BATCH, BULK - i) }, () => ({ name: 'e', data: {}, opts: { delay } })));
  }
  const publishedBy = dueAt - Date.now();
  let moved = 0;
  const promoted = (async () => {
    while (Date.now() < dueAt || (await queue.getDelayedCount()) > 0) await new Promise((r) => setTimeout(r, 20));
    moved = Date.now() - dueAt;
  })();
  await Promise.all([promoted, done]);
  const handledAt = Date.now() - dueAt;
  await worker.close();
  await queue.close();
  return { moved, handled: handledAt, publishedBy };
}

/** The throughput and move tables' rows, agentbus on Redis and SQLite, BullMQ on the Redis server. */
async function throughputRows(): Promise<{ publish: string[]; move: string[] }> {
  const publish: string[] = [];
  const move: string[] = [];
  const perSec = (ms: number) => rate(BULK, ms).toLocaleString('en-US');
  const moveRow = (name: string, r: MoveResult) => {
    if (r.publishedBy < 0) console.error(`warning: ${name}: the backlog was stored ${-r.publishedBy} ms after its due time`);
    move.push(`| ${name} | ${r.moved} ms | ${r.handled} ms | ${perSec(Math.max(1, r.handled))} |`);
  };

  const server = await startRedisServer();
  const admin = new Redis(server.url);
  const fresh = () => admin.flushall();
  try {
    const pub: Record<string, [number, number]> = {};
    for (const how of ['batch', 'callers'] as const) {
      await fresh();
      const bus = await createRedisBus({ url: server.url, logger: silent });
      const a = await agentbusPublish(bus, how);
      await bus.close();
      await fresh();
      const b = await bullPublish(server.port, how);
      pub[how] = [a, b];
    }
    const line = (name: string, [a, b]: [number, number]) => publish.push(`| ${name} | ${perSec(a)} | ${perSec(b)} | ${(b / a).toFixed(1)}x |`);
    line(`publishBatch / addBulk of ${BATCH}`, pub.batch!);
    line(`publish() / add() from ${CALLERS} callers`, pub.callers!);

    await fresh();
    const [p, c] = [await createRedisBus({ url: server.url, logger: silent }), await createRedisBus({ url: server.url, logger: silent })];
    moveRow('agentbus Redis (two buses moving, one consuming)', await agentbusMove(p, c, 'bench.delay.move'));
    await p.close();
    await c.close();
    await fresh();
    moveRow('BullMQ 6.7 delayed jobs, same server (Worker promotes)', await bullMove(server.port));
  } finally {
    admin.disconnect();
    await server.stop();
  }

  const dir = mkdtempSync(join(tmpdir(), 'agentbus-bench-'));
  for (const how of ['batch', 'callers'] as const) {
    const bus = await createSqliteBus({ path: join(dir, `publish-${how}.db`), logger: silent });
    const ms = await agentbusPublish(bus, how);
    await bus.close();
    publish.push(`| SQLite: ${how === 'batch' ? `publishBatch of ${BATCH}` : `publish() from ${CALLERS} callers`} | ${perSec(ms)} | | |`);
  }
  const path = join(dir, 'move.db');
  const [s1, s2] = [await createSqliteBus({ path, logger: silent }), await createSqliteBus({ path, logger: silent })];
  moveRow('agentbus SQLite (two buses moving, one consuming)', await agentbusMove(s1, s2, 'bench.delay.move'));
  await s1.close();
  await s2.close();
  return { publish, move };
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

  const { publish, move } = await throughputRows();
  console.log(`\n## Delayed publish throughput (${BULK} events, delays 30-35 s: none falls due while measured)\n`);
  console.log('| delayed publishes | agentbus Redis events/s | BullMQ jobs/s, same server | agentbus / BullMQ |');
  console.log('|---|---:|---:|---:|');
  for (const r of publish) console.log(r);
  console.log(`\n## Delayed backlog: ${BULK} entries all due at once, time after the due time (consumer/Worker concurrency 64)\n`);
  console.log('| backlog | all in the topic / promoted | all handled | handled per s |');
  console.log('|---|---:|---:|---:|');
  for (const r of move) console.log(r);
}
