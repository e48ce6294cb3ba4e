// What V8's collector does while publishing to Redis, in a process that loads the Redis adapter only
// (bench/cpu.ts loads SQLite and the runtime too, and there every line, SQLite's included, spans one
// incremental mark-compact, during which scavenges promote whatever survives them: 37-46 MB a line
// whatever the publish path keeps). Publishes BENCH_N events (default 100,000) twice to a fresh
// redis-server and prints, per run, CPU µs per event and bench/gc.ts' figures:
//   node --expose-gc --import tsx bench/redis-publish-gc.ts [batch|single]
// batch: publishBatch, 1,000 a call; single: publish() from 100 callers (as bench/cpu.ts).
import { loadavg } from 'node:os';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { sample } from './util.js';
import { watchGc } from './gc.js';

const N = Number(process.env.BENCH_N || 100_000);
const mode = process.argv[2] ?? 'batch';
const server = await startRedisServer();
const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }) });
for (let run = 0; run < 2; run++) {
  global.gc?.();
  const gcDone = watchGc();
  const cpu0 = process.cpuUsage();
  if (mode === 'batch') {
    for (let i = 0; i < N; i += 1000) await bus.publishBatch(Array.from({ length: 1000 }, (_, j) => ({ type: 'p.batch', data: sample(i + j) })));
  } else {
    await Promise.all(Array.from({ length: 100 }, async (_, c) => {
      for (let i = 0; i < N / 100; i++) await bus.publish('p.single', sample(c * 10_000 + i));
    }));
  }
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ mode, run, nodeUsPerEvent: +((cpu.user + cpu.system) / N).toFixed(2), ...gcDone(), load: +loadavg()[0].toFixed(1) }));
}
await bus.close();
await server.stop?.();
process.exit(0);
