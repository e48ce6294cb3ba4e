// npm run bench: every section prints a table of agentbus beside a baseline measured in the same run.
// BENCH_N sets the event count (default 200000); BENCH_ONLY=sqlite|sqlite-latency|host|redis|keyed|scale|webhooks|stats|otel|delay|requests runs one section
// (sqlite includes sqlite-latency; keyed, scale, webhooks, stats, otel, delay and requests only when asked).
import { cpus, totalmem } from 'node:os';
import { sqliteBench } from './sqlite.js';
import { sqliteLatencyBench } from './sqlite-latency.js';
import { redisBench } from './redis.js';
import { hostBench } from './host.js';
import { webhooksBench } from './webhooks.js';
import { statsBench } from './stats.js';
import { delayBench } from './delay.js';
import { keyedBench } from './keyed.js';
import { scaleBench } from './scale.js';
import { hasRedisServer } from '../test/helpers/redis.js';

const only = process.env.BENCH_ONLY;
console.log(`# agentbus bench: node ${process.version}, ${cpus().length} x ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB`);
if (!only || only === 'sqlite') await sqliteBench();
if (!only || only === 'sqlite' || only === 'sqlite-latency') await sqliteLatencyBench();
if (!only || only === 'host') await hostBench();
if (!only || only === 'redis') {
  if (hasRedisServer()) await redisBench();
  else console.log('\n## Redis Streams: skipped, no redis-server on PATH');
}
if (only === 'keyed') await keyedBench(); // not in the default run: about 3 minutes on its own
if (only === 'scale') await scaleBench(); // not in the default run: child processes and a cluster, a few minutes
if (only === 'webhooks') await webhooksBench(); // not in the default run: it measures an example, not the bus
if (only === 'stats') await statsBench(); // not in the default run: building the store takes a while
if (only === 'otel') await (await import('./otel.js')).otelBench(); // not in the default run: it measures an optional dependency
if (only === 'delay') await delayBench(); // not in the default run: it waits for timers, and measures lateness, not throughput
if (only === 'requests') await (await import('./requests.js')).requestsBench(); // not in the default run: round trips, not throughput of events
