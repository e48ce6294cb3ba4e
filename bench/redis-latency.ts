// The latency lines of the Redis table alone (publish -> handler, one process, a local redis-server),
// as bench/redis.ts measures them: one warm-up window a side, then REPS alternating raw/agentbus
// windows, percentiles of each side's samples pooled. node --expose-gc --import tsx bench/redis-latency.ts
// (RATES=1000,10000; BENCH_LAT_REPS=5). Prints one JSON line a rate, with the load average around it;
// then a line the table does not have (`kept`): the same alternation with one subscription and one
// raw connection pair kept for every window and no GC forced between windows (redis.ts keptLatency:
// what a host idling between bursts sees; the table's line re-optimizes code at each window start).
import { loadavg } from 'node:os';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { busLatency, keptLatency, rawLatency } from './redis.js';
import { percentile } from './util.js';

const REPS = Number(process.env.BENCH_LAT_REPS || 5);
const rates = (process.env.RATES || '1000,10000').split(',').map(Number);
const server = await startRedisServer();
const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }) });
for (const perSec of rates) {
  const seconds = perSec >= 10_000 ? 2 : 3;
  const load = [loadavg()[0]];
  await rawLatency(server.url, perSec, 1);
  await busLatency(bus, perSec, 1);
  const pooled = { raw: [] as number[], ours: [] as number[] };
  for (let r = 0; r < REPS; r++) {
    global.gc?.();
    pooled.raw.push(...(await rawLatency(server.url, perSec, seconds)));
    global.gc?.();
    pooled.ours.push(...(await busLatency(bus, perSec, seconds)));
  }
  load.push(loadavg()[0]);
  const p = (xs: number[], q: number) => Number(percentile(xs, q).toFixed(3));
  const [p50, p99, raw50, raw99] = [p(pooled.ours, 50), p(pooled.ours, 99), p(pooled.raw, 50), p(pooled.raw, 99)];
  console.log(JSON.stringify({ perSec, windows: `${REPS} x ${seconds} s`, p50, raw50, p99, raw99, ratio99: Number((p99 / raw99).toFixed(2)), load: load.map((l) => l.toFixed(1)).join('-') }));

  const kept = await keptLatency(server.url, bus);
  const keptLoad = [loadavg()[0]];
  await kept.raw(perSec, 1);
  await kept.bus(perSec, 1);
  const k = { raw: [] as number[], ours: [] as number[] };
  for (let r = 0; r < REPS; r++) {
    k.raw.push(...(await kept.raw(perSec, seconds)));
    k.ours.push(...(await kept.bus(perSec, seconds)));
  }
  await kept.close();
  keptLoad.push(loadavg()[0]);
  const [k50, k99, kraw50, kraw99] = [p(k.ours, 50), p(k.ours, 99), p(k.raw, 50), p(k.raw, 99)];
  console.log(JSON.stringify({ perSec, kept: true, windows: `${REPS} x ${seconds} s`, p50: k50, raw50: kraw50, p99: k99, raw99: kraw99, ratio99: Number((k99 / kraw99).toFixed(2)), load: keptLoad.map((l) => l.toFixed(1)).join('-') }));
}
await bus.close();
await server.stop();
