// The two mechanisms design-actors.md names for one handler per key across hosts, as raw ioredis
// loops on the same workload as bench/keyed.ts line 1 (N events over KEYS keys, state { n } read
// and written per event, reads of 64): a bench-only prototype, not a product path.
//   node --import tsx bench/keyed-lease.ts        (KBENCH_N, KBENCH_KEYS as bench/keyed.ts)
// 1. owner per group (what agentbus does): one lease for the whole group, renewed on a timer; a
//    key's state is loaded once and cached; per read batch one Lua commit checks the group lease,
//    and per key checks the version and writes the state, then XACKs the batch.
// 2. a lease per key beside its state: per read batch one Lua call takes (SET NX PX) or renews each
//    key's lease and loads its state (the state cannot be cached past the lease: another consumer
//    may take the key once it lapses); then one Lua commit checks each key's lease, checks the
//    version, writes the state and XACKs. Keys another consumer holds would be given back (not
//    exercised here: one consumer, so the figures are the mechanism's floor).
// Prints ev/s, CPU per event (this process, redis-server) and redis-server's commands per event.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startRedisServer } from '../test/helpers/redis.js';
import { rate, sample } from './util.js';

const N = Number(process.env.KBENCH_N || 100_000);
const KEYS = Number(process.env.KBENCH_KEYS || 1000);
const READ = 64;
const LEASE_MS = 30_000;
const keyOf = (i: number) => `k${i % KEYS}`;
type Entry = [id: string, fields: string[]];
const subjectOf = (f: string[]) => f[f.indexOf('subject') + 1];

const COMMIT_OWNER = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local w = tonumber(ARGV[3])
for k = 1, w do
  local key = KEYS[1 + k]
  local v = tonumber(redis.call('HGET', key, 'v') or '0')
  if v ~= tonumber(ARGV[3 + 2 * k - 1]) then return -2 end
  redis.call('HSET', key, 'v', v + 1, 's', ARGV[3 + 2 * k])
end
redis.call('XACK', KEYS[2 + w], ARGV[2], unpack(ARGV, 4 + 2 * w))
return w`;

const ACQUIRE_LOAD = `
local out = {}
for k = 1, #KEYS / 2 do
  local lease, state = KEYS[2 * k - 1], KEYS[2 * k]
  local was = redis.call('SET', lease, ARGV[1], 'NX', 'PX', ARGV[2], 'GET')
  if was == false or was == ARGV[1] then
    if was then redis.call('PEXPIRE', lease, ARGV[2]) end
    out[k] = redis.call('HMGET', state, 'v', 's')
  else
    out[k] = false
  end
end
return out`;

const COMMIT_LEASED = `
local w = tonumber(ARGV[3])
for k = 1, w do
  local lease, key = KEYS[2 * k - 1], KEYS[2 * k]
  if redis.call('GET', lease) ~= ARGV[1] then return -1 end
  local v = tonumber(redis.call('HGET', key, 'v') or '0')
  if v ~= tonumber(ARGV[3 + 2 * k - 1]) then return -2 end
  redis.call('HSET', key, 'v', v + 1, 's', ARGV[3 + 2 * k])
end
redis.call('XACK', KEYS[2 * w + 1], ARGV[2], unpack(ARGV, 4 + 2 * w))
return w`;

interface Figures {
  rate: number;
  node: number;
  server: number;
  commands: number;
  /** Commands per event by name, most first (Lua's inner calls included: commandstats counts them). */
  byName: string;
}

async function serverCpu(r: Redis): Promise<number> {
  const info = await r.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1e6;
}

async function commands(r: Redis): Promise<Array<[string, number]>> {
  const out: Array<[string, number]> = [];
  for (const m of (await r.info('commandstats')).matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) if (!/^(info|config)/.test(m[1])) out.push([m[1], Number(m[2])]);
  return out.sort((a, b) => b[1] - a[1]);
}

async function publish(r: Redis, stream: string): Promise<void> {
  for (let i = 0; i < N; i += 1000) {
    const p = r.pipeline();
    for (let j = i; j < Math.min(N, i + 1000); j++) p.xadd(stream, '*', 'specversion', '1.0', 'id', randomUUID(), 'source', '/bench', 'type', 'bench', 'subject', keyOf(j), 'data', JSON.stringify(sample(j)));
    await p.exec();
  }
}

/** Per read batch: the distinct keys in read order, with each key's entries (its events run one at a time, in order). */
function byKey(entries: Entry[]): Map<string, Entry[]> {
  const m = new Map<string, Entry[]>();
  for (const e of entries) {
    JSON.parse(e[1][e[1].length - 1]);
    const k = subjectOf(e[1]);
    const l = m.get(k);
    if (l) l.push(e);
    else m.set(k, [e]);
  }
  return m;
}

async function measure(r: Redis, run: () => Promise<void>): Promise<Figures> {
  await r.config('RESETSTAT');
  const [c0, s0] = [process.cpuUsage(), await serverCpu(r)];
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  const s1 = await serverCpu(r);
  const cmds = (await commands(r)).filter(([, n]) => n / N >= 0.01);
  const byName = cmds.map(([name, n]) => `${name.toUpperCase()} ${(n / N).toFixed(2)}`).join(', ');
  return { rate: rate(N, ms), node: (c1.user + c1.system) / N, server: (s1 - s0) / N, commands: cmds.reduce((t, [, n]) => t + n, 0) / N, byName };
}

/** Owner per group: the group lease renewed on a timer, states cached, one commit per batch. */
async function ownerPerGroup(url: string, stream: string): Promise<Figures> {
  const r = new Redis(url);
  const reader = new Redis(url);
  r.defineCommand('commitOwner', { lua: COMMIT_OWNER });
  await r.xgroup('CREATE', stream, 'owner', '0');
  const me = 'c1';
  const cache = new Map<string, { v: number; n: number }>();
  const figures = await measure(r, async () => {
    await r.set('owner:{g}', me, 'PX', LEASE_MS);
    const renew = setInterval(() => void r.pexpire('owner:{g}', LEASE_MS), LEASE_MS / 3);
    let seen = 0;
    while (seen < N) {
      const res = (await reader.xreadgroup('GROUP', 'owner', me, 'COUNT', READ, 'STREAMS', stream, '>')) as [string, Entry[]][] | null;
      const entries = res?.[0][1] ?? [];
      if (entries.length === 0) continue;
      const keys = byKey(entries);
      const missing = [...keys.keys()].filter((k) => !cache.has(k));
      if (missing.length > 0) {
        const got = (await r.eval(`local o = {} for i, k in ipairs(KEYS) do o[i] = redis.call('HMGET', k, 'v', 's') end return o`, missing.length, ...missing.map((k) => `state:{g}:${k}`))) as Array<[string | null, string | null]>;
        missing.forEach((k, i) => cache.set(k, { v: Number(got[i][0] ?? 0), n: got[i][1] ? (JSON.parse(got[i][1]) as { n: number }).n : 0 }));
      }
      const args: unknown[] = [me, 'owner', keys.size];
      const hashes: string[] = [];
      for (const [k, es] of keys) {
        const c = cache.get(k)!;
        c.n += es.length;
        hashes.push(`state:{g}:${k}`);
        args.push(c.v, JSON.stringify({ n: c.n }));
        c.v++;
      }
      const n = await (r as unknown as { commitOwner(...a: unknown[]): Promise<number> }).commitOwner(keys.size + 2, 'owner:{g}', ...hashes, stream, ...args, ...entries.map(([id]) => id));
      if (n < 0) throw new Error(`owner commit refused (${n})`);
      seen += entries.length;
    }
    clearInterval(renew);
  });
  if ((await r.hget(`state:{g}:${keyOf(0)}`, 's')) !== JSON.stringify({ n: N / KEYS })) console.log('WARNING: owner per group miscounted');
  r.disconnect();
  reader.disconnect();
  return figures;
}

/** A lease per key: taken or renewed and the state loaded per batch, checked again at the commit. */
async function leasePerKey(url: string, stream: string): Promise<Figures> {
  const r = new Redis(url);
  const reader = new Redis(url);
  r.defineCommand('acquireLoad', { lua: ACQUIRE_LOAD });
  r.defineCommand('commitLeased', { lua: COMMIT_LEASED });
  await r.xgroup('CREATE', stream, 'leased', '0');
  const me = 'c1';
  const figures = await measure(r, async () => {
    let seen = 0;
    while (seen < N) {
      const res = (await reader.xreadgroup('GROUP', 'leased', me, 'COUNT', READ, 'STREAMS', stream, '>')) as [string, Entry[]][] | null;
      const entries = res?.[0][1] ?? [];
      if (entries.length === 0) continue;
      const keys = byKey(entries);
      const pairs = [...keys.keys()].flatMap((k) => [`lease:{g}:${k}`, `state:{g}:${k}`]);
      const got = (await (r as unknown as { acquireLoad(...a: unknown[]): Promise<Array<[string | null, string | null] | null>> }).acquireLoad(pairs.length, ...pairs, me, LEASE_MS));
      const args: unknown[] = [me, 'leased', keys.size];
      let i = 0;
      for (const [, es] of keys) {
        const rec = got[i++];
        if (rec === null) throw new Error('key held by another consumer (not expected with one consumer)');
        const v = Number(rec[0] ?? 0);
        const n = (rec[1] ? (JSON.parse(rec[1]) as { n: number }).n : 0) + es.length;
        args.push(v, JSON.stringify({ n }));
      }
      const done = await (r as unknown as { commitLeased(...a: unknown[]): Promise<number> }).commitLeased(pairs.length + 1, ...pairs, stream, ...args, ...entries.map(([id]) => id));
      if (done < 0) throw new Error(`leased commit refused (${done})`);
      seen += entries.length;
    }
  });
  if ((await r.hget(`state:{g}:${keyOf(0)}`, 's')) !== JSON.stringify({ n: N / KEYS })) console.log('WARNING: lease per key miscounted');
  r.disconnect();
  reader.disconnect();
  return figures;
}

const server = await startRedisServer();
const raw = new Redis(server.url);
const REPS = Number(process.env.KBENCH_LEASE_REPS || 2);
const rows: Array<[string, Figures]> = [];
for (let rep = 0; rep < REPS; rep++) {
  await raw.flushall();
  await publish(raw, 'owner:stream');
  rows.push(['owner per group', await ownerPerGroup(server.url, 'owner:stream')]);
  await raw.flushall();
  await publish(raw, 'lease:stream');
  rows.push(['lease per key', await leasePerKey(server.url, 'lease:stream')]);
}
console.log(`\n| ${N.toLocaleString('en-US')} events, ${KEYS.toLocaleString('en-US')} keys, reads of ${READ} | ev/s | CPU us/event, node | CPU us/event, redis-server | redis commands/event |\n|---|---:|---:|---:|---:|`);
for (const [name, f] of rows) console.log(`| ${name} | ${f.rate.toLocaleString('en-US')} | ${f.node.toFixed(1)} | ${f.server.toFixed(1)} | ${f.commands.toFixed(2)} (${f.byName}) |`);
raw.disconnect();
await server.stop();
