// Bytes allocated per event on the Redis publish -> handler hop: N events (default 10,000, after
// 3,000 to warm up) one at a time, each published once the previous one reached its handler, one
// subscriber; `raw` does the same with a bare XADD / XREADGROUP / XACK loop. Bytes come from V8's
// GC statistics (bench/gc.ts), so fix the young generation to compare runs:
//   node --expose-gc --max-semi-space-size=1 --min-semi-space-size=1 --import tsx bench/redis-hop-alloc.ts bus|raw
// PROFILE=file writes the sampling heap profiler's bytes per event by function (every 1 KB, collected
// objects included). Prints the commands Redis ran per event too.
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { sample } from './util.js';
import { watchGc } from './gc.js';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';

/** Calls per command so far (INFO commandstats), read on a connection of its own. */
async function commandCalls(url: string): Promise<Record<string, number>> {
  const c = new Redis(url);
  const info = await c.info('commandstats');
  c.disconnect();
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
}

/** PROFILE=file: the sampling heap profiler (every 1 KB, collected objects kept) over the measured events, summed by function. */
async function profiled<T>(run: () => Promise<T>): Promise<T> {
  if (!process.env.PROFILE) return run();
  const s = new Session();
  s.connect();
  await s.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  const out = await run();
  const { profile } = (await s.post('HeapProfiler.stopSampling')) as any;
  const by = new Map<string, number>();
  const walk = (n: any) => {
    const cf = n.callFrame;
    const k = `${cf.functionName || '(anon)'} ${cf.url.replace(/^.*node_modules\//, '').replace(/^.*wt-alloc\//, '')}:${cf.lineNumber + 1}`;
    by.set(k, (by.get(k) ?? 0) + n.selfSize);
    for (const c of n.children) walk(c);
  };
  walk(profile.head);
  const rows = [...by].sort((a, b) => b[1] - a[1]).slice(0, 60).map(([k, v]) => `${Math.round(v / N)}\t${k}`);
  writeFileSync(process.env.PROFILE, rows.join('\n') + '\n');
  return out;
}

const N = Number(process.env.N || 10_000);
const WARM = 3000;
const mode = process.argv[2] ?? 'bus';
const server = await startRedisServer();
if (mode === 'bus') {
  const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }) });
  let wake = null as (() => void) | null;
  const sub = await bus.subscribe({ group: 'g', types: ['a.hop'], concurrency: 64 }, () => { const w = wake; wake = null; if (w) w(); });
  const hop = (i: number) => new Promise<void>((r) => { wake = r; void bus.publish('a.hop', sample(i)); });
  for (let i = 0; i < WARM; i++) await hop(i);
  global.gc?.();
  const calls0 = await commandCalls(server.url);
  const done = watchGc();
  await profiled(async () => { for (let i = 0; i < N; i++) await hop(i); });
  const g = done();
  const calls = await commandCalls(server.url);
  const perEvent = Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, +((v - (calls0[k] ?? 0)) / N).toFixed(2)]).filter(([, v]) => (v as number) > 0));
  console.log(JSON.stringify({ mode, commandsPerEvent: perEvent, bytesPerEvent: Math.round(g.allocatedMB * 1e6 / N), scav10k: +(g.scavenges * 10000 / N).toFixed(1), ...g }));
  await sub.close(); await bus.close();
} else {
  const stream = 'raw:hop';
  const pub = new Redis(server.url); const con = new Redis(server.url);
  await pub.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
  let wake = null as (() => void) | null; let stop = false;
  const consuming = (async () => {
    while (!stop) {
      const res = (await con.xreadgroup('GROUP', 'g', 'c', 'COUNT', 500, 'BLOCK', 200, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
      const entries = res?.[0][1] ?? [];
      for (const [, f] of entries) { JSON.parse(f[1]); const w = wake; wake = null; if (w) w(); }
      if (entries.length) await con.xack(stream, 'g', ...entries.map(([id]) => id));
    }
  })();
  const hop = (i: number) => new Promise<void>((r) => { wake = r; void pub.xadd(stream, '*', 'event', JSON.stringify({ id: crypto.randomUUID(), t: performance.now(), data: sample(i) })); });
  for (let i = 0; i < WARM; i++) await hop(i);
  global.gc?.();
  const calls0 = await commandCalls(server.url);
  const done = watchGc();
  await profiled(async () => { for (let i = 0; i < N; i++) await hop(i); });
  const g = done();
  const calls = await commandCalls(server.url);
  const perEvent = Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, +((v - (calls0[k] ?? 0)) / N).toFixed(2)]).filter(([, v]) => (v as number) > 0));
  console.log(JSON.stringify({ mode, commandsPerEvent: perEvent, bytesPerEvent: Math.round(g.allocatedMB * 1e6 / N), scav10k: +(g.scavenges * 10000 / N).toFixed(1), ...g }));
  stop = true; await consuming; pub.disconnect(); con.disconnect();
}
await server.stop?.();
process.exit(0);
