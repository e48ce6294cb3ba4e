// A small driver for profiling the keyed drain on Redis (not part of `npm run bench`):
//   node --import tsx bench/keyed-profile.ts                 # keyed then unkeyed, CPU and commands per event
//   KPROF=/tmp/keyed.cpuprofile node --import tsx bench/keyed-profile.ts keyed   # a CPU profile per drain: $KPROF.<group>.cpuprofile
// It drains N events over KEYS keys (state { n } read and written per event, concurrency 64, as
// bench/keyed.ts line 1) and prints, per drain: events/s, CPU µs per event in this process and in
// redis-server, and redis-server's commands per event (INFO commandstats, calls and µs per event).
// KBENCH_N, KBENCH_KEYS as bench/keyed.ts; argv[2]: keyed | unkeyed | both (default).
// KPROF_ROUNDS=R repeats keyed and unkeyed alternately R times (fresh groups over the same events)
// and ends with the median keyed/unkeyed ratios of throughput and of CPU: on a shared machine the
// load drifts between drains, and a ratio taken from neighbouring drains moves less.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import type { KeyedDeliveryContext } from '../bus/keyed/contract.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { rate, sample } from './util.js';

const N = Number(process.env.KBENCH_N || 50_000);
const KEYS = Number(process.env.KBENCH_KEYS || 1000);
const which = process.argv[2] ?? 'both';
const keyOf = (i: number) => `k${i % KEYS}`;

type Stats = Map<string, { calls: number; usec: number }>;

async function commandStats(raw: Redis): Promise<Stats> {
  const out: Stats = new Map();
  for (const m of (await raw.info('commandstats')).matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g)) out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

async function serverCpu(raw: Redis): Promise<number> {
  const info = await raw.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1e6;
}

const server = await startRedisServer();
const raw = new Redis(server.url);
const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }) });
const type = `kprof.${randomUUID().slice(0, 8)}`;
for (let i = 0; i < N; i += 1000) {
  await bus.publishBatch(Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ type, subject: keyOf(i + j), data: sample(i + j) })));
}

const ROUNDS = Number(process.env.KPROF_ROUNDS || 1);
const ratios: Array<{ rate: number; cpu: number }> = [];
const sides = which === 'both' ? [true, false] : [which === 'keyed'];
for (let round = 0; round < ROUNDS; round++) {
  const figures: Array<{ rate: number; cpu: number }> = [];
  for (const keyed of sides) figures.push(await drain(keyed, `${keyed ? 'keyed' : 'plain'}-${round}`));
  if (figures.length === 2) ratios.push({ rate: figures[0].rate / figures[1].rate, cpu: figures[1].cpu / figures[0].cpu });
}
if (ratios.length > 0) {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const show = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
  console.log(`keyed/unkeyed over ${ratios.length} rounds: throughput ${show(ratios.map((r) => r.rate))} (median ${median(ratios.map((r) => r.rate)).toFixed(2)}); CPU, node + redis-server, unkeyed/keyed ${show(ratios.map((r) => r.cpu))} (median ${median(ratios.map((r) => r.cpu)).toFixed(2)})`);
}
await bus.close();
raw.disconnect();
await server.stop();

/** One drain of the events in `group`; its events/s and CPU (node + redis-server) per event. */
async function drain(keyed: boolean, group: string): Promise<{ rate: number; cpu: number }> {
  let seen = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  await raw.config('RESETSTAT');
  const session = process.env.KPROF ? new Session() : null;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  const [c0, s0] = [process.cpuUsage(), await serverCpu(raw)];
  const t0 = performance.now();
  const sub = await bus.subscribe({ group, types: [type], from: 'earliest', concurrency: 64, ...(keyed ? { key: 'subject' as const } : {}) }, (_e, ctx) => {
    if (keyed) {
      const c = ctx as KeyedDeliveryContext<{ n: number } | null>;
      c.state = { n: (c.state?.n ?? 0) + 1 };
    }
    if (++seen === N) finish();
  });
  await all;
  const ks = sub.keyedStats?.() ?? null;
  await sub.close();
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(`${process.env.KPROF}.${group}.cpuprofile`, JSON.stringify(profile));
    session.disconnect();
  }
  const ms = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  const s1 = await serverCpu(raw);
  const stats = await commandStats(raw);
  const label = keyed ? 'keyed' : 'unkeyed';
  console.log(`${label}: ${rate(N, ms).toLocaleString('en-US')} ev/s; CPU/event ${((c1.user + c1.system) / N).toFixed(1)} us node + ${((s1 - s0) / N).toFixed(1)} us redis-server`);
  const rows = [...stats].filter(([name, s]) => !name.startsWith('info') && !name.startsWith('config') && s.usec / N >= 0.01).sort((a, b) => b[1].usec - a[1].usec);
  for (const [name, s] of rows) console.log(`  ${name.padEnd(14)} ${(s.calls / N).toFixed(3).padStart(8)} calls/event ${(s.usec / N).toFixed(2).padStart(7)} us/event`);
  if (ks) console.log(`  owner: ${ks.commits} commits (${(N / ks.commits).toFixed(1)} events each), ${ks.loads} loads, ${ks.conflicts} conflicts`);
  if (keyed) {
    const n = ((await bus.keys!.get(group, keyOf(0)))?.state as { n: number } | null)?.n;
    if (n !== N / KEYS) console.log(`WARNING: key ${keyOf(0)} counted ${n}, expected ${N / KEYS}`);
  }
  return { rate: rate(N, ms), cpu: (c1.user + c1.system + s1 - s0) / N };
}
