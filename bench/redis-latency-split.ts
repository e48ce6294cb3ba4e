// Where the Redis latency tail comes from: publish -> handler at 1,000/s with each side swapped for
// its raw ioredis counterpart, in one run. node --expose-gc --import tsx bench/redis-latency-split.ts
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { busLatency, offer, rawLatency } from './redis.js';
import { percentile, sample } from './util.js';

const PER_SEC = Number(process.env.RATE || 1000);
const REPS = Number(process.env.BENCH_LAT_REPS || 5);
const server = await startRedisServer();
const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }) });
const raw = new Redis(server.url);

/** Raw XADD of an agentbus-shaped envelope; an agentbus subscription consumes. */
async function rawPublishBusConsume(seconds: number): Promise<number[]> {
  const type = `split.${randomUUID().slice(0, 8)}`;
  const total = PER_SEC * seconds;
  const lat: number[] = [];
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const sub = await bus.subscribe({ group: 'split', types: [type], concurrency: 64 }, (e) => {
    lat.push(performance.now() - (e.data as { t: number }).t);
    if (lat.length === total) finish();
  });
  await offer(PER_SEC, total, (i) => {
    const event = { specversion: '1.0', id: randomUUID(), type, source: '/split', time: new Date().toISOString(), data: { t: performance.now(), ...sample(i) } };
    void raw.xadd(`events:${type}`, '*', 'event', JSON.stringify(event));
  });
  await all;
  await sub.close();
  return lat;
}

/** bus.publish; a raw XREADGROUP + XACK loop consumes. */
async function busPublishRawConsume(seconds: number): Promise<number[]> {
  const type = `split.${randomUUID().slice(0, 8)}`;
  const stream = `events:${type}`;
  const total = PER_SEC * seconds;
  const lat: number[] = [];
  const con = new Redis(server.url);
  await raw.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
  const consuming = (async () => {
    while (lat.length < total) {
      const res = (await con.xreadgroup('GROUP', 'g', 'c', 'COUNT', 500, 'BLOCK', 1000, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
      const entries = res?.[0][1] ?? [];
      const now = performance.now();
      // The bus writes the fields layout by default (`data` one field of several), `event` in the envelope one.
      for (const [, f] of entries) lat.push(now - (f[0] === 'event' ? (JSON.parse(f[1]) as { data: { t: number } }).data : (JSON.parse(f[f.indexOf('data') + 1]) as { t: number })).t);
      if (entries.length) await con.xack(stream, 'g', ...entries.map(([id]) => id));
    }
  })();
  await offer(PER_SEC, total, (i) => void bus.publish(type, { t: performance.now(), ...sample(i) }));
  await consuming;
  con.disconnect();
  return lat;
}

const sides: Record<string, (s: number) => Promise<number[]>> = {
  'raw publish -> raw consume': (s) => rawLatency(server.url, PER_SEC, s),
  'raw publish -> agentbus consume': rawPublishBusConsume,
  'agentbus publish -> raw consume': busPublishRawConsume,
  'agentbus publish -> agentbus consume': (s) => busLatency(bus, PER_SEC, s),
};
const pooled = new Map<string, number[]>(Object.keys(sides).map((k) => [k, []]));
for (const run of Object.values(sides)) await run(1); // warm-up, discarded
for (let r = 0; r < REPS; r++) {
  for (const [name, run] of Object.entries(sides)) {
    global.gc?.();
    pooled.get(name)!.push(...(await run(3)));
  }
}
console.log(`\n| ${PER_SEC}/s, ${REPS} windows of 3 s pooled | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|`);
for (const [name, xs] of pooled) console.log(`| ${name} | ${[50, 90, 99].map((p) => percentile(xs, p).toFixed(2)).join(' | ')} |`);
raw.disconnect();
await bus.close();
await server.stop();
