// Keyed subscriptions (keyed agents), beside baselines measured in the same run
// (BENCH_ONLY=keyed npm run bench):
// 1. Draining 100,000 events over 1,000 keys (key: subject), each event reading and writing its
//    key's state ({ n }) and acknowledged, against an unkeyed drain of the same events and raw
//    loops doing the same read-modify-write by hand.
// 2. Latency of one keyed hop against an unkeyed hop at 1,000 events/s.
// 3. Memory when 1,000,000 keys are touched once each with maxActiveKeys 10,000, against the same
//    run at 100,000 keys (in child processes: bench/keyed-memory.ts).
// KBENCH_N sets the drain's event count, KBENCH_KEYS its keys, KBENCH_MEMORY_KEYS the large
// memory run's keys; KBENCH_MEMORY_REDIS=1 adds the memory runs on Redis (another 2-3 minutes).
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import type { Bus } from '../bus/contract.js';
import type { KeyedDeliveryContext } from '../bus/keyed/contract.js';
import { hasRedisServer, startRedisServer } from '../test/helpers/redis.js';
import { offer } from './redis.js';
import { percentile, printTable, rate, sample, worker, type Row } from './util.js';

const N = Number(process.env.KBENCH_N || 100_000);
const KEYS = Number(process.env.KBENCH_KEYS || 1000);
const MEMORY_KEYS = Number(process.env.KBENCH_MEMORY_KEYS || 1_000_000);
const CONCURRENCY = 64;
/** The WATCH baseline's events (a fifth: it is the slowest line by far, and a rate). */
const WATCH_N = Math.max(KEYS, Math.round(N / 5));
const silent = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'agentbus-bench-keyed-'));
const keyOf = (i: number) => `k${i % KEYS}`;
type Count = { n: number } | null;

/** The keyed handler of every line: read the key's state, write it back counted. */
const countState = (ctx: KeyedDeliveryContext<Count>) => {
  ctx.state = { n: (ctx.state?.n ?? 0) + 1 };
};

async function publishDrainEvents(bus: Bus, type: string): Promise<void> {
  for (let i = 0; i < N; i += 1000) {
    await bus.publishBatch(Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ type, subject: keyOf(i + j), data: sample(i + j) })));
  }
}

/**
 * CPU time per event of the agentbus drains, the figure a shared machine moves least: the bench
 * process's (process.cpuUsage) and, on Redis, redis-server's (INFO cpu, user + sys).
 */
interface Cpu {
  store: string;
  server: (() => Promise<number>) | null;
  lines: string[];
}

/** redis-server's CPU time so far, in microseconds. */
async function serverCpu(raw: Redis): Promise<number> {
  const info = await raw.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1e6;
}

/**
 * Events/s of one subscription draining the backlog, up to its close(): both sides are timed to
 * the moment everything is acknowledged (and, keyed, the state committed), as the raw loops are.
 * The keyed side checks a key's count afterwards (every event applied once).
 */
async function drain(bus: Bus, type: string, group: string, keyed: boolean, cpu: Cpu): Promise<number> {
  let seen = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const [c0, s0] = [process.cpuUsage(), cpu.server ? await cpu.server() : 0];
  const t0 = performance.now();
  const sub = await bus.subscribe({ group, types: [type], from: 'earliest', concurrency: CONCURRENCY, ...(keyed ? { key: 'subject' as const } : {}) }, (_e, ctx) => {
    if (keyed) countState(ctx as KeyedDeliveryContext<Count>);
    if (++seen === N) finish();
  });
  await all;
  await sub.close();
  const r = rate(N, performance.now() - t0);
  const c1 = process.cpuUsage(c0);
  const server = cpu.server ? ` + ${(((await cpu.server()) - s0) / N).toFixed(1)} us in redis-server` : '';
  cpu.lines.push(`${cpu.store}, ${keyed ? 'keyed' : 'unkeyed'}: ${((c1.user + c1.system) / N).toFixed(1)} us in the bench process${server}`);
  if (keyed) {
    const n = ((await bus.keys!.get(group, keyOf(0)))?.state as Count)?.n;
    if (n !== N / KEYS) console.log(`WARNING: ${group}: key ${keyOf(0)} counted ${n}, expected ${N / KEYS}`);
  }
  return r;
}

/** Same events written by hand: six CloudEvents fields an entry, as agentbus' default layout. */
async function rawPublish(raw: Redis, stream: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    const p = raw.pipeline();
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      p.xadd(stream, '*', 'specversion', '1.0', 'id', randomUUID(), 'source', '/bench', 'type', 'bench', 'subject', keyOf(j), 'data', JSON.stringify(sample(j)));
    }
    await p.exec();
  }
}

type Entry = [id: string, fields: string[]];
const subjectOf = (f: string[]) => f[f.indexOf('subject') + 1];

/**
 * Raw baseline 1, what a user writes without a batching layer: XREADGROUP 500, then 64 workers on
 * their own connections, each event WATCH its state hash, HGET, MULTI HSET + XACK EXEC (retried on
 * a conflict).
 */
async function rawWatchDrain(url: string, stream: string): Promise<number> {
  const reader = new Redis(url);
  await reader.xgroup('CREATE', stream, 'watch', '0');
  const conns = Array.from({ length: CONCURRENCY }, () => new Redis(url));
  const t0 = performance.now();
  let seen = 0;
  while (seen < WATCH_N) {
    const res = (await reader.xreadgroup('GROUP', 'watch', 'c', 'COUNT', 500, 'STREAMS', stream, '>')) as [string, Entry[]][] | null;
    const entries = res?.[0][1] ?? [];
    let next = 0;
    await Promise.all(conns.map(async (c) => {
      while (next < entries.length) {
        const [id, f] = entries[next++];
        JSON.parse(f[f.length - 1]);
        const sk = `raw:watch:${subjectOf(f)}`;
        for (;;) {
          await c.watch(sk);
          const s = await c.hget(sk, 's');
          const n = s === null ? 0 : (JSON.parse(s) as { n: number }).n;
          if ((await c.multi().hset(sk, 's', JSON.stringify({ n: n + 1 })).xack(stream, 'watch', id).exec()) !== null) break;
        }
      }
    }));
    seen += entries.length;
  }
  const r = rate(WATCH_N, performance.now() - t0);
  if ((await reader.hget(`raw:watch:${keyOf(0)}`, 's')) !== JSON.stringify({ n: WATCH_N / KEYS })) console.log('WARNING: raw WATCH loop miscounted');
  reader.disconnect();
  for (const c of conns) c.disconnect();
  return r;
}

/**
 * Raw baseline 2, the floor of what agentbus does per batch: XREADGROUP 500 + parse, then one Lua
 * call that reads and writes each event's key's state (JSON in a field of one hash) and XACKs the batch.
 */
async function rawLuaDrain(url: string, stream: string): Promise<number> {
  const r = new Redis(url);
  r.defineCommand('keyedBatch', {
    numberOfKeys: 2,
    lua: `
local n = tonumber(ARGV[2])
for i = 1, n do
  local k = ARGV[2 + i]
  local s = redis.call('HGET', KEYS[1], k)
  local c = s and cjson.decode(s).n or 0
  redis.call('HSET', KEYS[1], k, cjson.encode({n = c + 1}))
end
redis.call('XACK', KEYS[2], ARGV[1], unpack(ARGV, 3 + n, 2 + 2 * n))
return n`,
  });
  await r.xgroup('CREATE', stream, 'lua', '0');
  const t0 = performance.now();
  let seen = 0;
  while (seen < N) {
    const res = (await r.xreadgroup('GROUP', 'lua', 'c', 'COUNT', 500, 'STREAMS', stream, '>')) as [string, Entry[]][] | null;
    const entries = res?.[0][1] ?? [];
    if (entries.length === 0) continue;
    const keys: string[] = [];
    for (const [, f] of entries) {
      JSON.parse(f[f.length - 1]);
      keys.push(subjectOf(f));
    }
    await (r as unknown as { keyedBatch(...a: unknown[]): Promise<number> }).keyedBatch('raw:lua:state', stream, 'lua', entries.length, ...keys, ...entries.map(([id]) => id));
    seen += entries.length;
  }
  const out = rate(N, performance.now() - t0);
  if ((await r.hget('raw:lua:state', keyOf(0))) !== JSON.stringify({ n: N / KEYS })) console.log('WARNING: raw Lua loop miscounted');
  r.disconnect();
  return out;
}

/**
 * Raw SQLite baseline: the hand-written consumer of bench/sqlite.ts (poll past a cursor, parse, move
 * the cursor), with each event's key's state read and written (a WITHOUT ROWID table) in the same
 * IMMEDIATE transaction of 500 events.
 */
function rawSqliteDrain(): number {
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE raw_events (seq INTEGER PRIMARY KEY, type TEXT, subject TEXT, body TEXT);
    CREATE TABLE raw_cursor (seq INTEGER); INSERT INTO raw_cursor VALUES (0);
    CREATE TABLE raw_state (key TEXT PRIMARY KEY, state TEXT) WITHOUT ROWID;`);
  const ins = db.prepare('INSERT INTO raw_events (type, subject, body) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < N; i++) ins.run('bench', keyOf(i), JSON.stringify({ id: randomUUID(), time: new Date().toISOString(), data: sample(i) }));
  })();
  const next = db.prepare('SELECT seq, subject, body FROM raw_events WHERE seq > ? ORDER BY seq LIMIT 500');
  const cursor = db.prepare('SELECT seq FROM raw_cursor');
  const move = db.prepare('UPDATE raw_cursor SET seq = ?');
  const get = db.prepare('SELECT state FROM raw_state WHERE key = ?');
  const put = db.prepare('INSERT INTO raw_state (key, state) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET state = excluded.state');
  const take = db.transaction(() => {
    const rows = next.all((cursor.get() as { seq: number }).seq) as { seq: number; subject: string; body: string }[];
    for (const r of rows) {
      JSON.parse(r.body);
      const s = get.get(r.subject) as { state: string } | undefined;
      put.run(r.subject, JSON.stringify({ n: (s ? (JSON.parse(s.state) as { n: number }).n : 0) + 1 }));
    }
    if (rows.length) move.run(rows[rows.length - 1].seq);
    return rows.length;
  });
  const t0 = performance.now();
  let seen = 0;
  while (seen < N) seen += take.immediate();
  const r = rate(N, performance.now() - t0);
  if ((get.get(keyOf(0)) as { state: string }).state !== JSON.stringify({ n: N / KEYS })) console.log('WARNING: raw SQLite loop miscounted');
  db.close();
  return r;
}

/** Line 1 on one store: the keyed drain and the unkeyed one of the same events, then the raw baselines given. */
async function drainRows(store: string, bus: Bus, raws: Row[], cpu: Cpu): Promise<Row[]> {
  const type = `kbench.drain.${randomUUID().slice(0, 8)}`;
  await publishDrainEvents(bus, type);
  const keyed = await drain(bus, type, 'keyed', true, cpu);
  const plain = await drain(bus, type, 'plain', false, cpu);
  const scenario = `${store}: drain ${N.toLocaleString('en-US')} events over ${KEYS.toLocaleString('en-US')} keys, state { n } read+written per event, concurrency ${CONCURRENCY}`;
  return [
    { scenario, agentbus: keyed, baseline: plain, baselineName: 'agentbus unkeyed drain, same events', goal: store === 'Redis' ? '>= 0.6x unkeyed' : '-' },
    ...raws.map((r) => ({ ...r, scenario, agentbus: keyed })),
  ];
}

/**
 * Line 2: publish -> handler latency at `perSec`, keyed (the state loaded, counted and committed
 * as above) and unkeyed, on one bus. Both subscriptions stay open across windows (a keyed owner's
 * cache warms once, as in a long-lived agent); one warm-up window per side is discarded, then REPS
 * alternating windows pooled, as bench/redis.ts does.
 */
async function latencyRows(store: string, bus: Bus): Promise<string[]> {
  const perSec = 1000;
  const REPS = Number(process.env.KBENCH_LAT_REPS || 3);
  const seconds = 2;
  const tag = randomUUID().slice(0, 8);
  let current: number[] = [];
  let want = 0;
  let finish = () => {};
  const onEvent = (e: { data: unknown }) => {
    current.push(performance.now() - (e.data as { t: number }).t);
    if (current.length === want) finish();
  };
  const subs = [
    await bus.subscribe({ group: 'lat', types: [`kbench.lat.plain.${tag}`], concurrency: CONCURRENCY }, onEvent),
    await bus.subscribe({ group: 'klat', types: [`kbench.lat.keyed.${tag}`], concurrency: CONCURRENCY, key: 'subject' }, (e, ctx) => {
      countState(ctx as KeyedDeliveryContext<Count>);
      onEvent(e);
    }),
  ];
  await sleep(500); // the keyed group's first ownership is taken
  const window = async (keyed: boolean, s: number) => {
    current = [];
    want = perSec * s;
    const all = new Promise<void>((r) => (finish = r));
    const type = `kbench.lat.${keyed ? 'keyed' : 'plain'}.${tag}`;
    await offer(perSec, want, (i) => void bus.publish(type, { t: performance.now(), ...sample(i) }, { subject: keyOf(i) }));
    await all;
    return current;
  };
  await window(false, 1);
  await window(true, 1);
  const pooled = { plain: [] as number[], keyed: [] as number[] };
  for (let r = 0; r < REPS; r++) {
    global.gc?.();
    pooled.plain.push(...(await window(false, seconds)));
    global.gc?.();
    pooled.keyed.push(...(await window(true, seconds)));
  }
  for (const s of subs) await s.close();
  return [50, 99].map((p) => {
    const [k, u] = [percentile(pooled.keyed, p), percentile(pooled.plain, p)];
    return `| ${store}: latency p${p} at ${perSec.toLocaleString('en-US')}/s (${REPS} windows of ${seconds} s, pooled) | ${k.toFixed(2)} ms | ${u.toFixed(2)} ms | ${(k / u).toFixed(2)}x |`;
  });
}

/** Line 3: one child process per run (a clean heap, its own RSS). */
async function memoryRows(store: 'sqlite' | 'redis', url?: string): Promise<string[]> {
  const out: string[] = [];
  for (const keys of [MEMORY_KEYS / 10, MEMORY_KEYS]) {
    const [m] = await worker('keyed-memory.ts', { store, url, keys, dir, maxActiveKeys: 10_000 }, ['--expose-gc']).done;
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    out.push(
      `| ${store === 'redis' ? 'Redis' : 'SQLite file'}: ${keys.toLocaleString('en-US')} keys once each | ${(m.ms / 1000).toFixed(1)} s (${rate(keys, m.ms).toLocaleString('en-US')} ev/s) | ${mib(m.heapBefore)} | ${mib(m.heapPeak)} | ${mib(m.heapAfter)} | ${mib(m.rssAfter)} | ${m.cacheSize.toLocaleString('en-US')} |`,
    );
  }
  return out;
}

export async function keyedBench(): Promise<void> {
  const t0 = performance.now();
  const throughput: Row[] = [];
  const cpuLines: string[] = [];
  const latency: string[] = [];
  const memory: string[] = [];

  const sqlite = await createSqliteBus({ path: join(dir, 'bus.db'), logger: silent });
  const rawSqlite: Row = { scenario: '', agentbus: 0, baseline: rawSqliteDrain(), baselineName: 'raw poll + state upserts + cursor, one transaction per 500', goal: '-' };
  throughput.push(...(await drainRows('SQLite', sqlite, [rawSqlite], { store: 'SQLite', server: null, lines: cpuLines })));
  latency.push(...(await latencyRows('SQLite', sqlite)));
  await sqlite.close();

  const redis = hasRedisServer();
  let redisServer: Awaited<ReturnType<typeof startRedisServer>> | null = null;
  let redisUrl: string | null = null;
  if (redis) {
    const server = (redisServer = await startRedisServer());
    const raw = new Redis(server.url);
    await rawPublish(raw, 'raw:keyed:watch', WATCH_N);
    await rawPublish(raw, 'raw:keyed:lua', N);
    const watch = await rawWatchDrain(server.url, 'raw:keyed:watch');
    const lua = await rawLuaDrain(server.url, 'raw:keyed:lua');
    const bus = await createRedisBus({ url: server.url, logger: silent });
    const raws: Row[] = [
      { scenario: '', agentbus: 0, baseline: watch, baselineName: `raw WATCH/HGET/MULTI HSET+XACK per event, ${CONCURRENCY} connections (${WATCH_N.toLocaleString('en-US')} events)`, goal: '-' },
      { scenario: '', agentbus: 0, baseline: lua, baselineName: 'raw XREADGROUP 500 + one Lua call a batch (state hash + XACK)', goal: '-' },
    ];
    throughput.push(...(await drainRows('Redis', bus, raws, { store: 'Redis', server: () => serverCpu(raw), lines: cpuLines })));
    latency.push(...(await latencyRows('Redis', bus)));
    await bus.close();
    await raw.flushall();
    raw.disconnect();
    if (process.env.KBENCH_MEMORY_REDIS === '1') redisUrl = server.url;
    else await server.stop(), (redisServer = null);
  }

  printTable('Keyed subscriptions: drain (keyed agentbus vs each baseline)', throughput);
  console.log(`\nCPU time per event of the agentbus drains above: ${cpuLines.join('; ')}.`);
  console.log('\n| latency of one hop | keyed | unkeyed | ratio |\n|---|---:|---:|---:|');
  for (const l of latency) console.log(l);

  memory.push(...(await memoryRows('sqlite')));
  if (redisUrl !== null) memory.push(...(await memoryRows('redis', redisUrl)));
  console.log(`\n| at most ${(10_000).toLocaleString('en-US')} keys in memory | drain | heap before | heap peak | heap after (gc) | RSS after | keys in memory at the end |\n|---|---:|---:|---:|---:|---:|---:|`);
  for (const l of memory) console.log(l);
  await redisServer?.stop();
  if (!redis) console.log('\nRedis lines skipped: no redis-server on PATH');
  console.log(`\n(keyed bench: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
}
