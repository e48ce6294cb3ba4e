// The latency lines of the Redis table alone (publish -> handler, one process, a local redis-server),
// as bench/redis.ts measures them: one warm-up window a side, then REPS alternating raw/agentbus
// windows, percentiles of each side's samples pooled. node --expose-gc --import tsx bench/redis-latency.ts
// (RATES=1000,10000; BENCH_LAT_REPS=5). Prints one JSON line a rate, with the load average around it.
import { loadavg } from 'node:os';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { busLatency, rawLatency } from './redis.js';
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
}
await bus.close();
await server.stop();
