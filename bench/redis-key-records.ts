// `agentbus state get` and `state rm` of one key on Redis with many unrelated keys in the database:
// what they cost the caller, and the SCAN calls they make. Starts its own redis-server, fills it
// with N unrelated keys (default 100,000), gives a keyed group 20 keys with a wait and a step record
// each, then times, R times each (default 20), what `state get` asks (bus.keys.get, waits and
// steps of the key, at once) and `state rm` of a key (bus.keys.remove), and prints the median and
// the largest. Records are created through the store's openWait, as handlers do. First, with the
// group's index removed (as a version without it left the group) and a new owner, the one-time cost of its first
// per-key call.
//   node --import tsx bench/redis-key-records.ts [N] [R]
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { RedisDriver } from '../adapters/redis/driver.js';
import { createRedisBus } from '../adapters/redis/index.js';
import { Keys } from '../adapters/redis/keys.js';
import { defineAllScripts } from '../adapters/redis/scripts/index.js';
import { startRedisServer } from '../test/helpers/redis.js';

const unrelated = Number(process.argv[2] ?? 100_000);
const reps = Number(process.argv[3] ?? 20);
const KEYS = 20;

const server = await startRedisServer();
const raw = new Redis(server.url);
for (let i = 0; i < unrelated; i += 10_000) {
  const p = raw.pipeline();
  for (let j = i; j < Math.min(unrelated, i + 10_000); j++) p.set(`unrelated:${j}`, 'x');
  await p.exec();
}
const scans = async () => Number(/cmdstat_scan:calls=(\d+)/.exec(await raw.info('commandstats'))?.[1] ?? 0);

const client = new Redis(server.url);
defineAllScripts(client);
const store = new RedisDriver(client, new Keys('events:'), pino({ level: 'silent' }), false, () => ({})).state;
const group = 'Bench';
await store.own(group, 'bench', 60_000);
const far = Date.now() + 3_600_000;
/** Gives key `k` a wait and a step record, under ids of round `r`. */
async function records(k: string, r: number): Promise<void> {
  await store.openWait(group, `${k}-s${r}`, { type: 'step llm', key: k, deadline: far }, 86_400_000);
  await store.matchWait(group, `${k}-s${r}`, JSON.stringify({ v: 'x'.repeat(200) }));
  await store.openWait(group, `${k}-w${r}`, { type: 'a.granted', key: k, deadline: far }, 86_400_000);
}
for (let k = 0; k < KEYS; k++) await records(`k${k}`, 0);

const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }) });
const keys = bus.keys!;
const ms = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

async function timed(what: string, run: (i: number) => Promise<unknown>, before?: (i: number) => Promise<void>): Promise<void> {
  const times: number[] = [];
  const s0 = await scans();
  for (let i = 0; i < reps; i++) {
    if (before) await before(i);
    const t = process.hrtime.bigint();
    await run(i);
    times.push(ms(t));
  }
  const s1 = await scans();
  times.sort((a, b) => a - b);
  console.log(`${what}: median ${times[Math.floor(times.length / 2)].toFixed(2)} ms, max ${times.at(-1)!.toFixed(2)} ms, ${((s1 - s0) / reps).toFixed(1)} SCAN calls each (${reps} runs)`);
}

console.log(`${unrelated} unrelated keys; group ${group}: ${KEYS} keys with a wait and a step record each (dbsize ${await raw.dbsize()})`);
// As an earlier version (no index) left the group, then this version took it over (a new epoch):
// its first per-key call indexes it, once.
await raw.del('events:{agentbus:Bench}:index-epochs', 'events:{agentbus:Bench}:owner', ...Array.from({ length: KEYS }, (_, k) => `events:{agentbus:Bench}:waitkey:k${k}`));
await store.own(group, 'bench-upgraded', 60_000);
const s0 = await scans();
const t0 = process.hrtime.bigint();
await keys.waits(group, { key: 'k0' });
console.log(`first per-key call on a group written without the index: ${ms(t0).toFixed(2)} ms, ${(await scans()) - s0} SCAN calls`);
await timed('state get (keys.get + waits + steps of one key)', () => Promise.all([keys.get(group, 'k1'), keys.waits(group, { key: 'k1' }), keys.steps(group, { key: 'k1' })]));
await timed('state rm of one key (keys.remove)', (i) => keys.remove(group, [`k${i % KEYS}`]), (i) => records(`k${i % KEYS}`, i + 1));
await bus.close();
client.disconnect();
raw.disconnect();
await server.stop();
