// Request/reply round trips: agentbus (bus.request to a replier made with bus.subscribe, on its own
// bus) beside a raw ioredis request/reply over two streams on the same redis-server (the requester
// XADDs to a request stream; the replier reads it with XREADGROUP and XADDs the reply, plus XACK, in
// one pipeline; the requester XREADs its reply stream), and agentbus on a SQLite file.
// Sequential round trips (p50, p99) and throughput with 64 requests in flight.
// BENCH_ONLY=requests npm run bench (not in the default run); BENCH_N sets the in-flight run's count.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { Bus } from '../bus/contract.js';
import { createRedisBus } from '../adapters/redis/index.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { percentile } from './util.js';

const N = Math.min(Number(process.env.BENCH_N || 20_000), 200_000);
/** Sequential round trips per window; the first window of each side is a discarded warm-up. */
const SEQ = Math.max(200, Math.floor(N / 10));
const IN_FLIGHT = 64;
/** Windows per side, alternated with the other sides (a shared machine's noise hits all of them). */
const ROUNDS = 2;
const silent = pino({ level: 'silent' });

/** Something that sends a request and resolves with its reply. */
type Ask = (i: number) => Promise<unknown>;

interface Side {
  name: string;
  ask: Ask;
  close(): Promise<void>;
}

/** Sequential round trips, in ms. */
async function sequential(ask: Ask, n: number): Promise<number[]> {
  const rtt: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await ask(i);
    rtt.push(performance.now() - t);
  }
  return rtt;
}

/** `n` requests, IN_FLIGHT at a time: requests per second, and each round trip in ms. */
async function concurrent(ask: Ask, n: number): Promise<{ perSec: number; rtt: number[] }> {
  let next = 0;
  const rtt: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) {
        const i = next++;
        const t = performance.now();
        await ask(i);
        rtt.push(performance.now() - t);
      }
    }),
  );
  return { perSec: Math.round(n / ((performance.now() - t0) / 1000)), rtt };
}

/** agentbus: a requesting bus and a replying bus on one store; the replier's return value is the reply. */
async function agentbusSide(name: string, requester: Bus, replier: Bus): Promise<Side> {
  const type = `bench.ask.${randomUUID().slice(0, 8)}`;
  const sub = await replier.subscribe({ group: 'bench-replier', types: [type], concurrency: IN_FLIGHT }, (e) => e.data);
  return {
    name,
    ask: (i) => requester.request(type, { i }, { timeoutMs: 60_000 }),
    close: async () => {
      await sub.close();
      await requester.close();
      await replier.close();
    },
  };
}

/**
 * Raw ioredis: the request stream read by a consumer group (the replier XADDs each reply and XACKs
 * in one pipeline per read), the reply stream read by the requester with XREAD from the last id it
 * saw. Four connections: a blocking read and a writer on each side.
 */
async function rawSide(url: string): Promise<Side> {
  const id = randomUUID().slice(0, 8);
  const [reqKey, repKey] = [`raw:req:${id}`, `raw:rep:${id}`];
  const [reqWrite, reqRead, repRead, repWrite] = [new Redis(url), new Redis(url), new Redis(url), new Redis(url)];
  await repWrite.xgroup('CREATE', reqKey, 'replier', '$', 'MKSTREAM');
  let stopped = false;
  const waiting = new Map<string, (data: unknown) => void>();
  type Entries = Array<[string, string[]]>;
  // The replier: read requests, answer each with its data, acknowledge them.
  const replier = (async () => {
    while (!stopped) {
      const res = (await repRead.xreadgroup('GROUP', 'replier', 'c', 'COUNT', IN_FLIGHT, 'BLOCK', 1000, 'STREAMS', reqKey, '>').catch(() => null)) as [string, Entries][] | null;
      const entries = res?.[0]?.[1] ?? [];
      if (entries.length === 0) continue;
      const p = repWrite.pipeline();
      for (const [, f] of entries) p.xadd(f[3]!, '*', 'c', f[1]!, 'd', f[5]!);
      p.xack(reqKey, 'replier', ...entries.map(([eid]) => eid));
      await p.exec();
    }
  })();
  // The requester's reply reader.
  const reader = (async () => {
    let last = '0-0';
    while (!stopped) {
      const res = (await reqRead.xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', repKey, last).catch(() => null)) as [string, Entries][] | null;
      for (const [eid, f] of res?.[0]?.[1] ?? []) {
        last = eid;
        const done = waiting.get(f[1]!);
        waiting.delete(f[1]!);
        done?.(JSON.parse(f[3]!));
      }
    }
  })();
  let seq = 0;
  return {
    name: 'raw ioredis, two streams',
    ask: async (i) => {
      const c = String(seq++);
      const reply = new Promise((resolve) => waiting.set(c, resolve));
      await reqWrite.xadd(reqKey, '*', 'c', c, 'r', repKey, 'd', JSON.stringify({ i }));
      return reply;
    },
    close: async () => {
      stopped = true;
      await Promise.all([replier, reader]);
      for (const r of [reqWrite, reqRead, repRead, repWrite]) r.disconnect();
    },
  };
}

export async function requestsBench(): Promise<void> {
  const server = await startRedisServer();
  const dir = mkdtempSync(join(tmpdir(), 'agentbus-bench-req-'));
  const sides = [
    await agentbusSide('agentbus Redis', await createRedisBus({ url: server.url, logger: silent }), await createRedisBus({ url: server.url, logger: silent })),
    await rawSide(server.url),
    await agentbusSide('agentbus SQLite', await createSqliteBus({ path: join(dir, 'req.db'), logger: silent }), await createSqliteBus({ path: join(dir, 'req.db'), logger: silent })),
  ];
  const seq = new Map<string, number[]>(sides.map((s) => [s.name, []]));
  const conc = new Map<string, { perSec: number[]; rtt: number[] }>(sides.map((s) => [s.name, { perSec: [], rtt: [] }]));
  for (const s of sides) {
    await sequential(s.ask, SEQ); // warm-up (JIT, connections, groups), discarded
    await concurrent(s.ask, Math.min(N, 5000));
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of sides) {
      global.gc?.();
      seq.get(s.name)!.push(...(await sequential(s.ask, SEQ)));
      global.gc?.();
      const c = await concurrent(s.ask, N);
      conc.get(s.name)!.perSec.push(c.perSec);
      conc.get(s.name)!.rtt.push(...c.rtt);
    }
  }
  for (const s of sides) await s.close();
  await server.stop();

  const [ours, raw, lite] = sides.map((s) => s.name) as [string, string, string];
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const mean = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
  const rows: Array<[string, (name: string) => number, (x: number) => string]> = [
    ['sequential, p50', (n) => percentile(seq.get(n)!, 50), ms],
    ['sequential, p99', (n) => percentile(seq.get(n)!, 99), ms],
    [`${IN_FLIGHT} in flight, requests/s`, (n) => mean(conc.get(n)!.perSec), (x) => `${x.toLocaleString('en-US')}/s`],
    [`${IN_FLIGHT} in flight, round trip p50`, (n) => percentile(conc.get(n)!.rtt, 50), ms],
    [`${IN_FLIGHT} in flight, round trip p99`, (n) => percentile(conc.get(n)!.rtt, 99), ms],
  ];
  console.log(`\n## Request/reply round trip (${ROUNDS} alternated windows per side: ${SEQ} sequential requests, then ${N.toLocaleString('en-US')} with ${IN_FLIGHT} in flight; one process, loopback)\n`);
  console.log(`| request/reply | ${ours} | ${raw} | ratio | ${lite} |`);
  console.log('|---|---:|---:|---:|---:|');
  for (const [label, of, fmt] of rows) {
    const [o, b, l] = [of(ours), of(raw), of(lite)];
    console.log(`| ${label} | ${fmt(o)} | ${fmt(b)} | ${(o / b).toFixed(2)}x | ${fmt(l)} |`);
  }
}
