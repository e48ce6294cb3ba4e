// One memory run of bench/keyed.ts in its own process (node --expose-gc): publishes `keys` events,
// each to a key of its own, then drains them through a keyed subscription (maxActiveKeys as given,
// concurrency 64) that writes each key's state. Prints one JSON line: the drain's ms, the heap before
// (collected), at its peak (sampled every 50 ms), after (collected), RSS after, keys in memory at the end.
import { join } from 'node:path';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import type { KeyedDeliveryContext } from '../bus/keyed/contract.js';

const { store, url, keys, dir, maxActiveKeys } = JSON.parse(process.argv[2]) as { store: 'sqlite' | 'redis'; url?: string; keys: number; dir: string; maxActiveKeys: number };
const logger = pino({ level: 'silent' });
const bus = store === 'redis' ? await createRedisBus({ url, logger }) : await createSqliteBus({ path: join(dir, `memory-${keys}.db`), logger });
const type = `kbench.memory.${keys}`;
for (let i = 0; i < keys; i += 5000) {
  await bus.publishBatch(Array.from({ length: Math.min(5000, keys - i) }, (_, j) => ({ type, subject: `key-${i + j}`, data: { i: i + j } })));
}
global.gc?.();
const heapBefore = process.memoryUsage().heapUsed;
let heapPeak = heapBefore;
const sampler = setInterval(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)), 50);
// Keys handled at least once (a delivery run again after a lapsed lease must not count twice).
const handled = new Uint8Array(keys);
let seen = 0;
let finish!: () => void;
const all = new Promise<void>((r) => (finish = r));
const t0 = performance.now();
const sub = await bus.subscribe({ group: 'memory', types: [type], from: 'earliest', concurrency: 64, key: 'subject', maxActiveKeys }, (e, ctx) => {
  const i = (e.data as { i: number }).i;
  (ctx as KeyedDeliveryContext<unknown>).state = { n: 1, i };
  if (handled[i] === 0 && ((handled[i] = 1), ++seen === keys)) finish();
});
await all;
const cacheSize = sub.keyedStats!()!.activeKeys;
await sub.close();
const ms = performance.now() - t0;
clearInterval(sampler);
heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
global.gc?.();
const { heapUsed: heapAfter, rss: rssAfter } = process.memoryUsage();
const last = await bus.keys!.get('memory', `key-${keys - 1}`);
if (last === null) console.error(`WARNING: key-${keys - 1} has no state`);
await bus.close();
console.log(JSON.stringify({ ms, heapBefore, heapPeak, heapAfter, rssAfter, cacheSize }));
