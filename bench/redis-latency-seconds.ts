// Where in a window the publish -> handler tail at 1,000/s falls, second by second: the windows of
// bench/redis-latency.ts (raw and agentbus alternated, one warm-up window a side), and per second of
// each window the samples over 1 ms, this process' CPU (user + system, every thread: JIT compiles
// and GC helpers too) and the young-generation collections. One setting a run:
//   CONSUMERS=fresh (default): new consumers each window, as redis.ts busLatency/rawLatency;
//   CONSUMERS=kept: one subscription and one raw connection pair for every window (keptLatency);
//   GC=1 (default) forces a full GC before each window, as the table does; GC=0 does not;
//   IDLE_MS (0) idles this long before each window (after its GC, if any): with 15000, V8's memory
//   reducer gets to run its own full GCs between bursts (node --trace-gc shows them).
// node --expose-gc --import tsx bench/redis-latency-seconds.ts (RATE=1000, SECONDS=3, REPS=4).
// With node --trace-deopt and MARK=1 it prints a marker at the end of each second, so the lines
// "marking dependent code ... reason: weak objects" can be counted between them: the optimized code
// a full GC threw away because objects it had embedded died.
import { loadavg } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { percentile, sample } from './util.js';

const RATE = Number(process.env.RATE || 1000);
const SECONDS = Number(process.env.SECONDS || 3);
const REPS = Number(process.env.REPS || 4);
const KEPT = process.env.CONSUMERS === 'kept';
const FORCE_GC = process.env.GC !== '0';
const IDLE_MS = Number(process.env.IDLE_MS || 0);

type Side = 'raw' | 'bus';
/** [published at, ms after the window's start; latency ms] */
type Sample = [at: number, ms: number];
let side: Side = 'raw';
let winStart = 0;
const perSecond = () => ({ cpu: new Array(SECONDS).fill(0), scavenges: new Array(SECONDS).fill(0), slow: [] as number[][] });
const stats = { raw: perSecond(), bus: perSecond() };

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const sec = Math.floor((e.startTime - winStart) / 1000);
    if (winStart > 0 && sec >= 0 && sec < SECONDS && (e as unknown as { detail: { kind: number } }).detail.kind === 1) stats[side].scavenges[sec]++;
  }
}).observe({ entryTypes: ['gc'] });

/** bench/util.ts offer, also taking this process' CPU at each second of the window. */
async function offer(perSec: number, total: number, send: (i: number) => void): Promise<void> {
  const start = (winStart = performance.now());
  let sent = 0;
  let sec = 0;
  let cpu = process.cpuUsage();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * perSec));
    while (sent < due) send(sent++);
    if (sec < SECONDS && (performance.now() - start >= (sec + 1) * 1000 || sent >= total)) {
      const used = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      stats[side].cpu[sec] += (used.user + used.system) / 1000;
      if (process.env.MARK) console.log(`MARK ${side} second ${sec + 1} done`);
      sec++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

const server = await startRedisServer();
const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }) });

/** A consumer of one stream and group: `window` publishes `seconds` worth and resolves with its samples. */
interface Pair {
  window(seconds: number): Promise<Sample[]>;
  close(): Promise<void>;
}

async function rawPair(): Promise<Pair> {
  const stream = `raw:sec:${randomUUID()}`;
  const pub = new Redis(server.url);
  const con = new Redis(server.url);
  await pub.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
  return {
    async window(seconds) {
      const total = RATE * seconds;
      const out: Sample[] = [];
      const consuming = (async () => {
        while (out.length < total) {
          const res = (await con.xreadgroup('GROUP', 'g', 'c', 'COUNT', 500, 'BLOCK', 1000, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
          const entries = res?.[0][1] ?? [];
          const now = performance.now();
          for (const [, f] of entries) {
            const t = (JSON.parse(f[1]) as { t: number }).t;
            out.push([t - winStart, now - t]);
          }
          if (entries.length) await con.xack(stream, 'g', ...entries.map(([id]) => id));
        }
      })();
      await offer(RATE, total, (i) => void pub.xadd(stream, '*', 'event', JSON.stringify({ id: randomUUID(), t: performance.now(), data: sample(i) })));
      await consuming;
      return out;
    },
    async close() {
      pub.disconnect();
      con.disconnect();
    },
  };
}

async function busPair(): Promise<Pair> {
  const type = `bench.sec.${randomUUID().slice(0, 8)}`;
  let out: Sample[] = [];
  let want = 0;
  let finish = () => {};
  const sub = await bus.subscribe({ group: 'lat', types: [type], concurrency: 64 }, (e) => {
    const t = (e.data as { t: number }).t;
    out.push([t - winStart, performance.now() - t]);
    if (out.length === want) finish();
  });
  return {
    async window(seconds) {
      out = [];
      want = RATE * seconds;
      const all = new Promise<void>((r) => (finish = r));
      await offer(RATE, want, (i) => void bus.publish(type, { t: performance.now(), ...sample(i) }));
      await all;
      return out;
    },
    close: () => sub.close(),
  };
}

const open: Record<Side, () => Promise<Pair>> = { raw: rawPair, bus: busPair };
const kept: Partial<Record<Side, Pair>> = {};
/** One window of `s`: on kept consumers, or on new ones closed after it. */
async function run(s: Side, seconds: number): Promise<Sample[]> {
  side = s;
  const pair = KEPT ? (kept[s] ??= await open[s]()) : await open[s]();
  const samples = await pair.window(seconds);
  winStart = 0;
  if (!KEPT) await pair.close();
  return samples;
}

await run('raw', 1);
await run('bus', 1);
for (const s of Object.values(stats)) Object.assign(s, perSecond());
const load = [loadavg()[0]];
const pooled: Record<Side, Sample[]> = { raw: [], bus: [] };
for (let r = 0; r < REPS; r++) {
  for (const s of ['raw', 'bus'] as const) {
    if (FORCE_GC) global.gc?.();
    if (IDLE_MS > 0) await new Promise((r) => setTimeout(r, IDLE_MS));
    const xs = await run(s, SECONDS);
    pooled[s].push(...xs);
    stats[s].slow.push(Array.from({ length: SECONDS }, (_, sec) => xs.filter(([at, ms]) => at >= sec * 1000 && at < (sec + 1) * 1000 && ms > 1).length));
  }
}
load.push(loadavg()[0]);
const f = (x: number) => x.toFixed(2);
console.log(`consumers ${KEPT ? 'kept' : 'fresh'}, ${FORCE_GC ? 'a full GC before each window' : 'no forced GC'}; ${REPS} windows of ${SECONDS} s a side at ${RATE}/s; load average ${load.map((l) => l.toFixed(1)).join('-')}`);
for (const s of ['raw', 'bus'] as const) {
  const all = pooled[s].map(([, ms]) => ms);
  const first = pooled[s].filter(([at]) => at < 1000).map(([, ms]) => ms);
  const rest = pooled[s].filter(([at]) => at >= 1000).map(([, ms]) => ms);
  console.log(
    `${s}: p50 ${f(percentile(all, 50))} p99 ${f(percentile(all, 99))} ms (first second p99 ${f(percentile(first, 99))}, the rest ${f(percentile(rest, 99))}); ` +
      `samples over 1 ms by second, each window: ${stats[s].slow.map((w) => w.join(',')).join('  ')}; ` +
      `CPU ms by second, mean of the windows: ${stats[s].cpu.map((c) => (c / REPS).toFixed(0)).join(',')}; scavenges by second, all windows: ${stats[s].scavenges.join(',')}`,
  );
}
for (const p of Object.values(kept)) await p.close();
await bus.close();
await server.stop();
process.exit(0);
