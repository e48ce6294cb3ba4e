// Scale-out (BENCH_ONLY=scale npm run bench): 1, 2 and 4 host processes (bench/scale-worker.ts, each
// a real child process with a bus.subscribe consumer) in one group, on a single redis-server and on a
// 3-master Redis Cluster, with the topics spread over its slots:
// - draining one backlog of SCALE_N events (default 60,000) over 8 topics: aggregate events/s, from
//   the go line to the last handler call in any process (one monotonic clock for every process);
// - at fixed publish rates (SCALE_RATES, default 1000,5000 per second, SCALE_SECONDS each, default 3),
//   published by this process: p50/p99 publish -> handler;
// - keyed (key: subject, 1,000 keys, each event reading and writing its key's state), SCALE_N / 4
//   events drained: all hosts in ONE group (one owner, the others stand by), and keys spread over 4
//   groups (one topic each) shared out among the hosts, so each group has one owner and the owners
//   are in different processes.
// CPU per event of the hosts (process.cpuUsage) and of redis-server (INFO cpu, all masters) come with
// each line: the machine may have fewer cores than the processes, so per-core figures are what a
// sizing uses. Ends with the memory one retained event takes in Redis (MEMORY USAGE of a stream).
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import type { Bus } from '../bus/contract.js';
import { startRedisCluster, startRedisServer } from '../test/helpers/redis.js';
import { nowMs, offer, percentile, sample } from './util.js';

const N = Number(process.env.SCALE_N || 60_000);
const RATES = (process.env.SCALE_RATES || '1000,5000').split(',').map(Number);
const SECONDS = Number(process.env.SCALE_SECONDS || 3);
const HOSTS = (process.env.SCALE_HOSTS || '1,2,4').split(',').map(Number);
const KEYS = 1000;
const silent = pino({ level: 'silent' });

interface Target {
  name: string;
  args: { url?: string; cluster?: { host: string; port: number }[] };
  masters: Redis[];
  stop(): Promise<void>;
}

interface Host {
  child: ChildProcess;
  n: number;
  last: number;
  /** CPU ms since the go line, as of its last report. */
  cpuMs: number;
  ready: Promise<void>;
  subscribed: Promise<void>;
  done: Promise<{ n: number; cpuMs: number; lat: number[] }>;
}

function host(target: Target, args: object): Host {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/scale-worker.ts', JSON.stringify({ ...target.args, ...args })], { stdio: ['pipe', 'pipe', 'inherit'] });
  let ready!: () => void;
  let subscribed!: () => void;
  let done!: (v: { n: number; cpuMs: number; lat: number[] }) => void;
  const h: Host = {
    child,
    n: 0,
    last: 0,
    cpuMs: 0,
    ready: new Promise((r) => (ready = r)),
    subscribed: new Promise((r) => (subscribed = r)),
    done: new Promise((r, reject) => {
      done = r;
      child.on('exit', (code) => code !== 0 && reject(new Error(`scale-worker exited ${code}`)));
    }),
  };
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const m = JSON.parse(l) as { ready?: 1; subscribed?: 1; done?: 1; n: number; last: number; cpuMs: number; lat?: number[] };
    if (m.ready) ready();
    else if (m.subscribed) subscribed();
    else if (m.done) done(m as { n: number; cpuMs: number; lat: number[] });
    else [h.n, h.last, h.cpuMs] = [m.n, m.last, m.cpuMs];
  });
  return h;
}

const redisCpuUs = async (t: Target) => {
  let us = 0;
  for (const m of t.masters) {
    const info = await m.info('cpu');
    const f = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)![1]);
    us += (f('used_cpu_user') + f('used_cpu_sys')) * 1e6;
  }
  return us;
};

const until = async (cond: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('scale bench: timed out waiting for the hosts');
    await new Promise((r) => setTimeout(r, 20));
  }
};

interface Run {
  hosts: Host[];
  go(): Promise<number>;
  handled(): number;
  finish(): Promise<{ cpuMs: number; lat: number[] }>;
}

/** Starts `count` hosts with per-host arguments, waits until they are connected. */
async function startHosts(target: Target, count: number, argsOf: (i: number) => object): Promise<Run> {
  const hosts = Array.from({ length: count }, (_, i) => host(target, argsOf(i)));
  await Promise.all(hosts.map((h) => h.ready));
  return {
    hosts,
    async go() {
      const t = nowMs();
      for (const h of hosts) h.child.stdin!.write('go\n');
      await Promise.all(hosts.map((h) => h.subscribed));
      return t;
    },
    handled: () => hosts.reduce((s, h) => s + h.n, 0),
    async finish() {
      for (const h of hosts) h.child.stdin!.end();
      const ds = await Promise.all(hosts.map((h) => h.done));
      return { cpuMs: ds.reduce((s, d) => s + d.cpuMs, 0), lat: ds.flatMap((d) => d.lat) };
    },
  };
}

const rows: string[] = [];
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

/** Drains `total` events already stored; one row. CPU: the hosts' from the go line to their last event (close left out). */
async function drainRow(target: Target, label: string, count: number, total: number, argsOf: (i: number) => object): Promise<void> {
  const run = await startHosts(target, count, argsOf);
  const r0 = await redisCpuUs(target);
  const t0 = await run.go();
  await until(() => run.handled() >= total, 300_000);
  await new Promise((r) => setTimeout(r, 150)); // every host's report after its last event
  const end = Math.max(...run.hosts.map((h) => h.last));
  const [r1, cpuMs] = [await redisCpuUs(target), run.hosts.reduce((s, h) => s + h.cpuMs, 0)];
  await run.finish();
  const perSec = total / ((end - t0) / 1000);
  const hostUs = (cpuMs * 1000) / total;
  const redisUs = (r1 - r0) / total;
  const split = run.hosts.map((h) => h.n).join('/');
  rows.push(`| ${target.name} | ${label} | ${count} | drain ${fmt(total)} | ${fmt(perSec)} ev/s | - | - | ${hostUs.toFixed(1)} | ${redisUs.toFixed(1)} | ${split} |`);
}

/**
 * Publishes at `perSec` for SECONDS while the hosts consume; one row. The rate reached is the events
 * over the time from the first publish to the last handler call; CPU is counted over the same span
 * (the hosts' from their reports, taken every 100 ms), so idle start-up and close are left out.
 */
async function rateRow(target: Target, label: string, count: number, perSec: number, argsOf: (i: number) => object, publish: (i: number) => void): Promise<void> {
  const run = await startHosts(target, count, argsOf);
  await run.go();
  await new Promise((r) => setTimeout(r, 500)); // keyed: owners take their groups
  const total = perSec * SECONDS;
  const [r0, c0, t0] = [await redisCpuUs(target), run.hosts.reduce((s, h) => s + h.cpuMs, 0), nowMs()];
  await offer(perSec, total, publish);
  await until(() => run.handled() >= total, 60_000);
  await new Promise((r) => setTimeout(r, 150)); // every host's report after its last event
  const [r1, c1] = [await redisCpuUs(target), run.hosts.reduce((s, h) => s + h.cpuMs, 0)];
  const end = Math.max(...run.hosts.map((h) => h.last));
  const { lat } = await run.finish();
  const split = run.hosts.map((h) => h.n).join('/');
  rows.push(`| ${target.name} | ${label} | ${count} | ${fmt(perSec)}/s for ${SECONDS} s | ${fmt(total / ((end - t0) / 1000))} ev/s | ${percentile(lat, 50).toFixed(2)} ms | ${percentile(lat, 99).toFixed(2)} ms | ${(((c1 - c0) * 1000) / total).toFixed(1)} | ${((r1 - r0) / total).toFixed(1)} | ${split} |`);
}

async function publishBacklog(bus: Bus, topics: string[], total: number, keyed: boolean): Promise<void> {
  for (let i = 0; i < total; i += 1000) {
    await bus.publishBatch(Array.from({ length: Math.min(1000, total - i) }, (_, j) => {
      const k = i + j;
      return { type: topics[k % topics.length], data: sample(k), ...(keyed ? { subject: `k${k % KEYS}` } : {}) };
    }));
  }
}

async function scaleOn(target: Target): Promise<void> {
  const bus = await createRedisBus({ ...target.args, logger: silent });
  const topics = (run: string) => Array.from({ length: 8 }, (_, i) => `scale.${run}.t${i}`);
  for (const count of HOSTS) {
    // Plain drain: every host in one group, on every topic.
    const plain = topics(`drain${count}`);
    await publishBacklog(bus, plain, N, false);
    await drainRow(target, 'bus.subscribe, 1 group', count, N, () => ({ topics: plain, groups: ['drain'], keyed: false, from: 'earliest' }));
    for (const perSec of RATES) {
      const ts = topics(`rate${count}x${perSec}`);
      await rateRow(target, 'bus.subscribe, 1 group', count, perSec, () => ({ topics: ts, groups: ['rate'], keyed: false, from: 'latest' }), (i) =>
        void bus.publish(ts[i % ts.length], { t: nowMs(), ...sample(i) }));
    }
    // Keyed, one group: one owner whatever the host count; the others stand by.
    const one = [`scale.keyed1.${count}`];
    const kn = N / 4;
    await publishBacklog(bus, one, kn, true);
    await drainRow(target, 'keyed, 1 group (1 owner, standbys)', count, kn, () => ({ topics: one, groups: ['k'], keyed: true, from: 'earliest' }));
    // Keyed, keys spread over 4 groups (a topic each), host i owning the groups g with g % hosts == i.
    const four = Array.from({ length: 4 }, (_, g) => `scale.keyed4.${count}.p${g}`);
    await publishBacklog(bus, four, kn, true);
    await drainRow(target, 'keyed, keys over 4 groups', count, kn, (i) => {
      const mine = [0, 1, 2, 3].filter((g) => g % count === i);
      return { topics: mine.map((g) => four[g]), groups: mine.map((g) => `k${g}`), keyed: true, from: 'earliest' };
    });
  }
  await bus.close();
}

/** Bytes one retained event takes in Redis: MEMORY USAGE of a stream of `n` events of the bench's payload, per event. */
async function bytesPerEvent(target: Target, n: number): Promise<string> {
  const lines: string[] = [];
  for (const layout of ['fields', 'envelope'] as const) {
    const bus = await createRedisBus({ ...target.args, logger: silent, layout: { '*': layout } });
    const type = `scale.memory.${layout}`;
    await publishBacklog(bus, [type], n, false);
    await bus.close();
    const bytes = Number(await target.masters[0].call('MEMORY', 'USAGE', `events:${type}`, 'SAMPLES', '0'));
    lines.push(`${layout} layout ${(bytes / n).toFixed(0)} bytes/event`);
  }
  return lines.join(', ');
}

export async function scaleBench(): Promise<void> {
  const loadBefore = loadavg()[0];
  const single = await startRedisServer();
  const singleTarget: Target = { name: 'Redis', args: { url: single.url }, masters: [new Redis(single.url)], stop: () => single.stop() };
  const cluster = await startRedisCluster(3);
  const clusterTarget: Target = {
    name: 'Cluster (3 masters)',
    args: { cluster: cluster.nodes },
    masters: cluster.nodes.map((n) => new Redis(n.port, n.host)),
    stop: () => cluster.stop(),
  };
  const memory = await bytesPerEvent(singleTarget, 100_000);
  for (const t of [singleTarget, clusterTarget]) {
    await scaleOn(t);
    for (const m of t.masters) m.disconnect();
    await t.stop();
  }
  console.log(`\n## Scale-out: host processes in one group (${cpus().length} cores on this machine: hosts, redis-server(s) and the publisher share them)\n`);
  console.log('| store | consumer | hosts | work | aggregate | p50 | p99 | host CPU µs/event | redis CPU µs/event | events per host |');
  console.log('|---|---|---:|---|---:|---:|---:|---:|---:|---|');
  for (const r of rows) console.log(r);
  console.log(`\nLoad average (1 min) ${loadBefore.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end: other work shares the cores.`);
  console.log(`\nMemory per retained event (MEMORY USAGE of a stream of 100,000 events of the bench's payload): ${memory}.`);
}
