// Latency publish -> handler of agentbus and of the raw ioredis loop measured at the same time, each
// in a process of its own against one local redis-server, window for window: a stall of the machine
// (a CPU taken by other work, redis-server descheduled) hits both sides alike, where alternated
// windows (bench/redis.ts) give each side different stalls. Neither side shares an event loop or a
// heap with the other. node --import tsx bench/redis-latency-paired.ts (RATE=1000, REPS=5, SECONDS=3).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { loadavg } from 'node:os';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { busLatency, rawLatency } from './redis.js';
import { percentile } from './util.js';

const [role, side, url] = process.argv.slice(2);
const RATE = Number(process.env.RATE || 1000);
const REPS = Number(process.env.REPS || 5);
const SECONDS = Number(process.env.SECONDS || (RATE >= 10_000 ? 2 : 3));

if (role === 'child') {
  // One side: a warm-up window, then a window each time the parent says go; the samples as JSON.
  const bus = side === 'bus' ? await createRedisBus({ url: url!, logger: pino({ level: 'silent' }) }) : null;
  const run = (s: number) => (bus ? busLatency(bus, RATE, s) : rawLatency(url!, RATE, s));
  await run(1);
  const lines = createInterface({ input: process.stdin });
  console.log('ready');
  for await (const line of lines) {
    if (line !== 'go') break;
    global.gc?.();
    console.log(JSON.stringify(await run(SECONDS)));
    console.log('ready');
  }
  await bus?.close();
  process.exit(0);
}

const server = await startRedisServer();
const load = [loadavg()[0]];
const children = ['raw', 'bus'].map((s) => {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/redis-latency-paired.ts', 'child', s, server.url], { stdio: ['pipe', 'pipe', 'inherit'] });
  const out: string[] = [];
  let readies = 0;
  let waiting: { n: number; wake: () => void } | null = null;
  createInterface({ input: child.stdout! }).on('line', (l) => {
    if (l !== 'ready') return void out.push(l);
    readies++;
    if (waiting && readies >= waiting.n) waiting.wake();
  });
  /** Resolves once the child said ready `n` times (it does once started, then after each window). */
  const ready = (n: number) => (readies >= n ? Promise.resolve() : new Promise<void>((wake) => (waiting = { n, wake })));
  return { side: s, child, out, ready };
});
const pooled: Record<string, number[]> = { raw: [], bus: [] };
for (let r = 0; r < REPS; r++) {
  await Promise.all(children.map((c) => c.ready(r + 1)));
  for (const c of children) c.child.stdin!.write('go\n');
}
await Promise.all(children.map((c) => c.ready(REPS + 1)));
for (const c of children) {
  c.child.stdin!.end('stop\n');
  for (const l of c.out) if (l.startsWith('[')) pooled[c.side]!.push(...(JSON.parse(l) as number[]));
}
await Promise.all(children.map((c) => new Promise((r) => c.child.once('exit', r))));
load.push(loadavg()[0]);
await server.stop();
const p = (xs: number[], q: number) => Number(percentile(xs, q).toFixed(3));
console.log(
  JSON.stringify({
    perSec: RATE,
    windows: `${REPS} x ${SECONDS} s, both sides at once`,
    p50: p(pooled.bus!, 50),
    raw50: p(pooled.raw!, 50),
    p99: p(pooled.bus!, 99),
    raw99: p(pooled.raw!, 99),
    ratio99: Number((p(pooled.bus!, 99) / p(pooled.raw!, 99)).toFixed(2)),
    samples: `${pooled.bus!.length}/${pooled.raw!.length}`,
    load: load.map((l) => l.toFixed(1)).join('-'),
  }),
);
