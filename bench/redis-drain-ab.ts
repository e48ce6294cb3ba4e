// Two checkouts' Redis drains in one process, alternated, with the raw loop between them:
//   node --expose-gc --import tsx bench/redis-drain-ab.ts <other checkout> [rounds, default 5]
// e.g. a worktree of main (`git worktree add --detach ../base main`, node_modules symlinked). Both
// buses drain the same BENCH_N events (default 100,000, `fields` layout) of one redis-server, each
// round in new groups: this checkout's bus and the other's (in turn first), then the raw loop of bench/redis-drain.ts
// (XREADGROUP COUNT 500 + parse + XACK). One line a drain (CPU µs per event of this process,
// events/s, what the collector did: bench/gc.ts), then the medians and ranges. Measured in one
// process within seconds of each other, the sides share whatever else the machine is doing, which
// moves one process's figures against another's by more than the changes measured.
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { Bus } from '../bus/contract.js';
import { createRedisBus } from '../adapters/redis/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { sample } from './util.js';
import { watchGc, type GcFigures } from './gc.js';

const other = process.argv[2];
if (!other) throw new Error('usage: bench/redis-drain-ab.ts <other checkout> [rounds]');
const rounds = Number(process.argv[3] || 5);
const N = Number(process.env.BENCH_N || 100_000);
const silent = pino({ level: 'silent' });
const otherBus = ((await import(resolve(other, 'adapters/redis/index.ts'))) as { createRedisBus: typeof createRedisBus }).createRedisBus;

const server = await startRedisServer();
const opts = { url: server.url, logger: silent, layout: { '*': 'fields' as const } };
const buses: [string, Bus][] = [
  ['this checkout', await createRedisBus(opts)],
  [`other (${other})`, await otherBus(opts)],
];
for (let i = 0; i < N; i += 1000) await buses[0][1].publishBatch(Array.from({ length: 1000 }, (_, j) => ({ type: 'bench.drain', data: sample(i + j) })));
const key = 'bench.drain';
const reader = new Redis(server.url);
const streamKey = (await reader.keys('*bench.drain*')).find((k) => k.endsWith('bench.drain') && !k.includes('retry'))!;

type Row = { us: number; evPerSec: number } & GcFigures;
const rows = new Map<string, Row[]>();

/** One drain of all N events, timed and watched. */
async function drain(name: string, run: () => Promise<void>): Promise<void> {
  global.gc?.();
  const gc = watchGc();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const row: Row = { us: +((c.user + c.system) / N).toFixed(2), evPerSec: Math.round(N / (ms / 1000)), ...gc() };
  rows.set(name, [...(rows.get(name) ?? []), row]);
  console.log(JSON.stringify({ side: name, ...row, load: +loadavg()[0].toFixed(1) }));
}

for (let r = 0; r < rounds; r++) {
  // Which bus goes first alternates: a drain's figures also depend on what ran just before it.
  for (const [name, bus] of r % 2 === 0 ? buses : [...buses].reverse()) {
    await drain(name, async () => {
      let n = 0;
      let finish!: () => void;
      const all = new Promise<void>((res) => (finish = res));
      const sub = await bus.subscribe({ group: `ab${r}-${name.length}`, types: [key], from: 'earliest', concurrency: 64 }, () => {
        if (++n === N) finish();
      });
      await all;
      await sub.close();
    });
  }
  const group = `raw${r}`;
  await reader.xgroup('CREATE', streamKey, group, '0');
  await drain('raw', async () => {
    let seen = 0;
    while (seen < N) {
      const res = (await reader.xreadgroup('GROUP', group, 'c', 'COUNT', 500, 'STREAMS', streamKey, '>')) as [string, [string, string[]][]][] | null;
      const entries = res?.[0][1] ?? [];
      for (const [, f] of entries) JSON.parse(f[f.indexOf('data') + 1]);
      if (entries.length) await reader.xack(streamKey, group, ...entries.map(([id]) => id));
      seen += entries.length;
    }
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const raw = median(rows.get('raw')!.map((x) => x.us));
for (const [name, rs] of rows) {
  const us = rs.map((x) => x.us);
  console.log(JSON.stringify({
    side: name,
    medianUsPerEvent: median(us),
    range: `${Math.min(...us)}-${Math.max(...us)}`,
    rawOverThis: +(raw / median(us)).toFixed(2),
    medianEvPerSec: median(rs.map((x) => x.evPerSec)),
    medianPromotedMB: median(rs.map((x) => x.promotedMB)),
    medianAllocatedMB: median(rs.map((x) => x.allocatedMB)),
    markCompacts: rs.map((x) => x.markCompacts).join(','),
  }));
}
reader.disconnect();
for (const [, bus] of buses) await bus.close();
await server.stop();
