// Where a Redis drain's time goes, one side at a time, in a process of its own:
//   node --expose-gc --import tsx bench/redis-drain.ts [ours|raw|both] [fields|envelope]
// Publishes BENCH_N events (default 100,000) of the bench's payload to a fresh redis-server, drains
// them (agentbus: one subscription at concurrency 64; raw: XREADGROUP COUNT 500 + parse + XACK), and
// prints, as JSON lines, events/s, CPU µs per event of this process and of redis-server (INFO cpu)
// and redis' calls per command (INFO commandstats), and what V8's collector did over the drain
// (bench/gc.ts: scavenges, mark-compacts, MB allocated and MB promoted to the old generation, the
// steadiest figures on a shared machine); agentbus' publishBatch is measured the same way.
// CPU per event is less noisy than events/s on a shared machine. DRAIN_REPEAT=n drains n times (new
// groups); DRAIN_PROFILE=<file> writes a CPU profile of each measured step alone
// (sampled every DRAIN_PROFILE_US µs, default 100); DRAIN_HEAP=<file> writes a sampling heap profile
// of each measured step holding only what survived the young generation (promoted, or still live:
// the allocation sites of the promoted bytes); DRAIN_READ_AHEAD=n
// subscribes with readAhead n (default: the subscription's default).
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Session } from 'node:inspector/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { sample } from './util.js';
import { watchGc } from './gc.js';

const N = Number(process.env.BENCH_N || 100_000);
const which = process.argv[2] ?? 'both';
const layout = (process.argv[3] ?? 'fields') as 'fields' | 'envelope';
const silent = pino({ level: 'silent' });

const server = await startRedisServer();
const admin = new Redis(server.url);
const redisCpu = async () => {
  const info = await admin.info('cpu');
  const f = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)![1]);
  return (f('used_cpu_user') + f('used_cpu_sys')) * 1e6;
};
const commandStats = async () => {
  const out: Record<string, number> = {};
  for (const m of (await admin.info('commandstats')).matchAll(/cmdstat_(\w+(?:\|\w+)?):calls=(\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
};

/** Times `drain`, with node's and redis-server's CPU over it, and the commands redis served. */
async function measure(name: string, drain: () => Promise<void>): Promise<void> {
  global.gc?.();
  const profile = process.env.DRAIN_PROFILE ? new Session() : null;
  if (profile) {
    profile.connect();
    await profile.post('Profiler.enable');
    // Finer than the default 1 ms: a drain of 100,000 events is about a second.
    await profile.post('Profiler.setSamplingInterval', { interval: Number(process.env.DRAIN_PROFILE_US || 100) });
    await profile.post('Profiler.start');
  }
  const heap = process.env.DRAIN_HEAP ? new Session() : null;
  if (heap) {
    heap.connect();
    // Objects that died young are dropped from the profile: what is left was promoted (or is live).
    await heap.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
  }
  const [cmd0, rcpu0] = [await commandStats(), await redisCpu()];
  const gcDone = watchGc();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await drain();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const gc = gcDone();
  const [cmd1, rcpu1] = [await commandStats(), await redisCpu()];
  if (heap) writeFileSync(`${process.env.DRAIN_HEAP}.${name}.heapprofile`, JSON.stringify((await heap.post('HeapProfiler.stopSampling')).profile));
  if (profile) writeFileSync(`${process.env.DRAIN_PROFILE}.${name}.cpuprofile`, JSON.stringify((await profile.post('Profiler.stop')).profile));
  const calls: Record<string, number> = {};
  for (const [k, v] of Object.entries(cmd1)) if (v - (cmd0[k] ?? 0) > 2 && k !== 'info') calls[k] = v - (cmd0[k] ?? 0);
  console.log(JSON.stringify({
    side: name,
    layout,
    n: N,
    evPerSec: Math.round(N / (ms / 1000)),
    nodeUsPerEvent: +((cpu.user + cpu.system) / N).toFixed(2),
    nodeSysUsPerEvent: +(cpu.system / N).toFixed(2),
    redisUsPerEvent: +((rcpu1 - rcpu0) / N).toFixed(2),
    calls,
    ...gc,
    load: +loadavg()[0].toFixed(1),
  }));
}

const fieldsOf = (i: number) => ['specversion', '1.0', 'id', randomUUID(), 'source', '/bench', 'type', 'bench', 'time', new Date().toISOString(), 'data', JSON.stringify(sample(i))];

if (which === 'raw' || which === 'both') {
  const key = `raw:${layout}`;
  for (let i = 0; i < N; i += 1000) {
    const p = admin.pipeline();
    for (let j = 0; j < 1000; j++) {
      if (layout === 'fields') p.xadd(key, '*', ...fieldsOf(i + j));
      else p.xadd(key, '*', 'event', JSON.stringify({ id: randomUUID(), type: 'bench', time: new Date().toISOString(), data: sample(i + j) }));
    }
    await p.exec();
  }
  await admin.xgroup('CREATE', key, 'drain', '0');
  const reader = new Redis(server.url);
  const field = layout === 'fields' ? 11 : 1;
  await measure('raw', async () => {
    let seen = 0;
    while (seen < N) {
      const res = (await reader.xreadgroup('GROUP', 'drain', 'c', 'COUNT', 500, 'STREAMS', key, '>')) as [string, [string, string[]][]][] | null;
      const entries = res?.[0][1] ?? [];
      for (const [, f] of entries) JSON.parse(f[field]);
      if (entries.length) await reader.xack(key, 'drain', ...entries.map(([id]) => id));
      seen += entries.length;
    }
  });
  reader.disconnect();
}

if (which === 'ours' || which === 'both') {
  const bus = await createRedisBus({ url: server.url, logger: silent, layout: { '*': layout } });
  await measure('agentbus publishBatch (1000 a batch)', async () => {
    for (let i = 0; i < N; i += 1000) await bus.publishBatch(Array.from({ length: 1000 }, (_, j) => ({ type: 'bench.drain', data: sample(i + j) })));
  });
  // DRAIN_REPEAT drains the same events again in new groups (the later ones with the code warm).
  for (let r = 0; r < Number(process.env.DRAIN_REPEAT || 1); r++) {
    let sub: Awaited<ReturnType<typeof bus.subscribe>> | undefined;
    // Timed until the last handler call, as bench/redis.ts does (its ack is still on its way then).
    await measure(r === 0 ? 'agentbus' : `agentbus again (${r})`, async () => {
      let drained = 0;
      let finish!: () => void;
      const all = new Promise<void>((r) => (finish = r));
      const readAhead = process.env.DRAIN_READ_AHEAD === undefined ? {} : { readAhead: Number(process.env.DRAIN_READ_AHEAD) };
      sub = await bus.subscribe({ group: `drain${r}`, types: ['bench.drain'], from: 'earliest', concurrency: 64, ...readAhead }, () => {
        if (++drained === N) finish();
      });
      await all;
    });
    await sub!.close();
  }
  await bus.close();
}

admin.disconnect();
await server.stop();
