// The consumer process of the two-process SQLite latency line (sqlite-latency.ts): subscribes,
// prints "ready", and once it handled `total` events prints {"lat": [...]}, the hops of all but
// the first `warm` (publish stamp to handler, process.hrtime in both processes).
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { nowMs } from './util.js';

const { path, type, warm, total } = JSON.parse(process.argv[2]) as { path: string; type: string; warm: number; total: number };
const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
const lat: number[] = [];
let seen = 0;
let finish!: () => void;
const all = new Promise<void>((r) => (finish = r));
const sub = await bus.subscribe({ group: 'lat', types: [type], concurrency: 64 }, (e) => {
  const hop = nowMs() - (e.data as { t: number }).t;
  if (++seen > warm) lat.push(hop);
  if (seen === total) finish();
});
console.log('ready');
await all;
console.log(JSON.stringify({ lat }));
await sub.close();
await bus.close();
