// The cost of bus.stats() on a large store: STATS_TOPICS topics (default 10,000), each with a group
// and a few events, plus one topic whose group has STATS_DLQ dead letters (default 1,000,000). The
// store is built with raw writes (an INSERT ... SELECT over a recursive CTE in SQLite, pipelined XADD
// in Redis), then stats() is timed; on Redis the bytes the server sent for one call are shown too.
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { createRedisBus } from '../adapters/redis/index.js';
import type { Bus } from '../bus/contract.js';
import { hasRedisServer, startRedisServer } from '../test/helpers/redis.js';

const TOPICS = Number(process.env.STATS_TOPICS || 10_000);
const DLQ = Number(process.env.STATS_DLQ || 1_000_000);
const EVENTS_PER_TOPIC = 5;
const CALLS = 3;
const silent = pino({ level: 'silent' });
const body = JSON.stringify({ specversion: '1.0', id: 'x', type: 'bench.stats', source: '/bench', time: new Date().toISOString(), data: { n: 1 } });

/** Median ms of CALLS stats() calls (fewer when one call takes over 20 s); checks the answer's shape. */
async function timeStats(bus: Bus, bytes?: () => Promise<number>): Promise<{ ms: number; bytes: number | null; topics: number; dead: number }> {
  const times: number[] = [];
  let sent: number | null = null;
  let topics = 0;
  let dead = 0;
  for (let i = 0; i < CALLS; i++) {
    const before = bytes ? await bytes() : 0;
    const t = performance.now();
    const s = await bus.stats();
    times.push(performance.now() - t);
    if (bytes) sent = (await bytes()) - before;
    topics = s.length;
    dead = s.reduce((n, x) => n + x.groups.reduce((m, g) => m + g.deadLetters, 0), 0);
    if (times[i] > 20_000) break;
  }
  times.sort((a, b) => a - b);
  return { ms: Math.round(times[Math.floor(times.length / 2)]), bytes: sent, topics, dead };
}

async function sqliteStats(): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), 'agentbus-bench-stats-')), 'bus.db');
  const bus = await createSqliteBus({ path, logger: silent });
  await bus.close(); // schema only
  const db = new Database(path);
  db.exec(`
    INSERT INTO groups (grp, start) VALUES ('bench-g', 0);
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ${TOPICS})
      INSERT INTO topics (name) SELECT 'bench.t' || i FROM n;
    INSERT INTO cursors (grp, topic, seq) SELECT 'bench-g', name, 0 FROM topics;
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ${TOPICS * EVENTS_PER_TOPIC})
      INSERT INTO events (topic, stored, body) SELECT 'bench.t' || (i % ${TOPICS}), 0, '${body}' FROM n;
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ${DLQ})
      INSERT INTO dead_letters (grp, topic, seq, body, reason, error, attempts, failed_at)
      SELECT 'bench-g', 'bench.t0', i, '${body}', 'failed', 'Error: bench', 5, 0 FROM n;
  `);
  db.close();
  const b = await createSqliteBus({ path, logger: silent });
  const r = await timeStats(b);
  await b.close();
  return `| SQLite | ${r.topics.toLocaleString('en-US')} | ${r.dead.toLocaleString('en-US')} | ${r.ms.toLocaleString('en-US')} ms | - |`;
}

async function redisStats(): Promise<string> {
  const server = await startRedisServer();
  const raw = new Redis(server.url);
  for (let i = 0; i < TOPICS; i += 1000) {
    const p = raw.pipeline();
    for (let t = i; t < Math.min(TOPICS, i + 1000); t++) {
      for (let e = 0; e < EVENTS_PER_TOPIC; e++) p.xadd(`events:bench.t${t}`, '*', 'event', body);
      p.xgroup('CREATE', `events:bench.t${t}`, 'bench-g', '0');
      p.sadd('events:{agentbus}:topics', `bench.t${t}`);
    }
    await p.exec();
  }
  for (let i = 0; i < DLQ; i += 10_000) {
    const p = raw.pipeline();
    for (let j = i; j < Math.min(DLQ, i + 10_000); j++) {
      p.xadd('{events:bench.t0}:dlq', '*', 'group', 'bench-g', 'position', '0-1', 'reason', 'failed', 'error', 'Error: bench', 'attempts', '5', 'failed_at', '0', 'body', body);
    }
    await p.exec();
  }
  const bus = await createRedisBus({ url: server.url, logger: silent });
  const sent = async () => Number(/total_net_output_bytes:(\d+)/.exec(await raw.info('stats'))![1]);
  // The first call finds dead letters written without their per-group counts and rebuilds those once.
  const t0 = performance.now();
  await bus.stats();
  firstRedisCall = Math.round(performance.now() - t0);
  const r = await timeStats(bus, sent);
  await bus.close();
  raw.disconnect();
  await server.stop();
  return `| Redis | ${r.topics.toLocaleString('en-US')} | ${r.dead.toLocaleString('en-US')} | ${r.ms.toLocaleString('en-US')} ms | ${((r.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB |`;
}

let firstRedisCall = 0;

export async function statsBench(): Promise<void> {
  const rows = [await sqliteStats()];
  if (hasRedisServer()) rows.push(await redisStats());
  console.log(`\n## stats(): ${TOPICS.toLocaleString('en-US')} topics with a group each, one group with ${DLQ.toLocaleString('en-US')} dead letters\n`);
  console.log('| store | topics | dead letters counted | ms per call (median of up to 3) | bytes sent by the server per call |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
  if (rows.length > 1) console.log(`\nRedis' first call, which rebuilt the dead-letter counts of the 1M entries written without them: ${firstRedisCall.toLocaleString('en-US')} ms.`);
}
