// Where a publish -> handler sample's time goes, at 1,000/s on one local Redis (Linux): every
// ioredis command is stamped (written, reply parsed), each sample split into its stages, the
// scheduler's counters of this process' main thread and of redis-server read every millisecond
// (time on a CPU, time waiting for one), and the slowest 1% printed with what they show.
// node --expose-gc --import tsx bench/redis-latency-trace.ts
// SIDE=both (alternated windows), bus, raw, or together (both in the same windows, each at RATE/2);
// RATE (1000), SECONDS (3), REPS (3); QUIET=1 also lists the slowest samples without a CPU wait;
// TRACE_ALL=1 prints every command in flight around each slow sample.
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { startRedisServer } from '../test/helpers/redis.js';
import { percentile, sample } from './util.js';

const PER_SEC = Number(process.env.RATE || 1000);
const SECONDS = Number(process.env.SECONDS || 3);
const REPS = Number(process.env.REPS || 3);
const SIDE = process.env.SIDE || 'both';

interface Cmd {
  conn: number;
  name: string;
  sent: number;
  reply: number;
  block: boolean;
  key: string;
}
const cmds: Cmd[] = [];
/** Per entry id: the XADD that wrote it and the XREADGROUP that read it. */
const added = new Map<string, Cmd>();
const readBy = new Map<string, Cmd>();
/** key + i -> entry id */
const idOf = new Map<string, string>();
const conns = new WeakMap<object, number>();
let nextConn = 0;

type Sendable = { name: string; args: unknown[]; resolve: (v: unknown) => void };
const proto = Redis.prototype as unknown as { sendCommand: (c: Sendable, s?: unknown) => unknown };
const orig = proto.sendCommand;
proto.sendCommand = function (this: object, command: Sendable, stream?: unknown) {
  if (!conns.has(this)) conns.set(this, nextConn++);
  const c: Cmd = { conn: conns.get(this)!, name: command.name, sent: performance.now(), reply: 0, block: false, key: String(command.args[0] ?? '') };
  cmds.push(c);
  const out = orig.call(this, command, stream);
  const resolve = command.resolve;
  command.resolve = (v: unknown) => {
    c.reply = performance.now();
    try {
      if (c.name === 'xadd') note(command.args, v, c);
      else if (c.name === 'xreadgroup') {
        c.block = command.args.some((a) => String(a).toUpperCase() === 'BLOCK');
        // One stream's reply arrives as [key, entries], several as a list of those.
        const res = (v === null ? [] : Array.isArray((v as unknown[])[0]) ? v : [v]) as [unknown, [unknown, unknown[]][]][];
        for (const [, entries] of res) for (const [id] of entries) readBy.set(String(id), c);
      }
    } catch {
      /* diagnostics only */
    }
    resolve(v);
  };
  return out;
};

function note(args: unknown[], reply: unknown, c: Cmd): void {
  const flat = args.flat(2).map(String);
  const key = flat[0];
  const id = String(reply);
  added.set(id, c);
  let i: number | undefined;
  const d = flat.indexOf('data');
  if (d >= 0 && d < flat.length - 1 && flat[d + 1].startsWith('{')) i = (JSON.parse(flat[d + 1]) as { i: number }).i;
  const e = flat.indexOf('event');
  if (i === undefined && e >= 0) i = (JSON.parse(flat[e + 1]) as { data: { i: number } }).data.i;
  if (i !== undefined) idOf.set(`${key}\n${i}`, id);
}

const gcs: { start: number; end: number }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push({ start: e.startTime, end: e.startTime + e.duration });
}).observe({ entryTypes: ['gc'] });

/** Loop ticks: a 1 ms interval's actual times, to see where the loop stalled. */
const ticks: number[] = [];
/**
 * At each tick, the scheduler's counters (ns on a CPU, ns waiting for one) of this process' main
 * thread and of redis-server's: a stall with the wait growing is CPU contention, not our code.
 */
const sched: { t: number; nodeRun: number; nodeWait: number; redisRun: number; redisWait: number }[] = [];
const schedOf = (path: string) => readFileSync(path, 'utf8').split(' ').map(Number);
let redisSched = '';
function sampleSched(): void {
  const [nodeRun, nodeWait] = schedOf(`/proc/${process.pid}/task/${process.pid}/schedstat`);
  const [redisRun, redisWait] = schedOf(redisSched);
  sched.push({ t: performance.now(), nodeRun, nodeWait, redisRun, redisWait });
}

interface Sample {
  side: string;
  pub: number;
  handler: number;
  key: string;
  i: number;
}

/** Calls `send` at `perSec` in 1 ms ticks (as bench/util.ts offer), recording each tick. */
async function offer(perSec: number, total: number, send: (i: number) => void): Promise<void> {
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    ticks.push(performance.now());
    sampleSched();
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * perSec));
    while (sent < due) send(sent++);
    await new Promise((r) => setTimeout(r, 1));
  }
}

const server = await startRedisServer();
{
  const info = new Redis(server.url);
  const pid = /process_id:(\d+)/.exec(await info.info('server'))![1];
  redisSched = `/proc/${pid}/task/${pid}/schedstat`;
  info.disconnect();
}
const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }) });

async function busWindow(seconds: number): Promise<Sample[]> {
  const type = `trace.${randomUUID().slice(0, 8)}`;
  const total = PER_SEC * seconds;
  const out: Sample[] = [];
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const sub = await bus.subscribe({ group: 'lat', types: [type], concurrency: 64 }, (e) => {
    const d = e.data as { t: number; i: number };
    out.push({ side: 'bus', pub: d.t, handler: performance.now(), key: `events:${type}`, i: d.i });
    if (out.length === total) finish();
  });
  await offer(PER_SEC, total, (i) => void bus.publish(type, { t: performance.now(), ...sample(i) }));
  await all;
  await sub.close();
  return out;
}

async function rawWindow(seconds: number): Promise<Sample[]> {
  const stream = `raw:lat:${randomUUID()}`;
  const pub = new Redis(server.url);
  const con = new Redis(server.url);
  await pub.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
  const total = PER_SEC * seconds;
  const out: Sample[] = [];
  const consuming = (async () => {
    while (out.length < total) {
      const res = (await con.xreadgroup('GROUP', 'g', 'c', 'COUNT', 500, 'BLOCK', 1000, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
      const entries = res?.[0][1] ?? [];
      const now = performance.now();
      for (const [, f] of entries) {
        const d = JSON.parse(f[1]) as { t: number; data: { i: number } };
        out.push({ side: 'raw', pub: d.t, handler: now, key: stream, i: d.data.i });
      }
      if (entries.length) await con.xack(stream, 'g', ...entries.map(([id]) => id));
    }
  })();
  await offer(PER_SEC, total, (i) => void pub.xadd(stream, '*', 'event', JSON.stringify({ id: randomUUID(), t: performance.now(), data: sample(i) })));
  await consuming;
  pub.disconnect();
  con.disconnect();
  return out;
}

/**
 * SIDE=together: both at once, each at RATE/2, their publishes interleaved in the same ticks, so
 * both see the same machine (a stall of the CPU hits both alike); split by side afterwards.
 */
async function togetherWindow(seconds: number): Promise<Sample[]> {
  const type = `trace.${randomUUID().slice(0, 8)}`;
  const stream = `raw:lat:${randomUUID()}`;
  const pub = new Redis(server.url);
  const con = new Redis(server.url);
  await pub.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
  const half = (PER_SEC * seconds) / 2;
  const out: Sample[] = [];
  let busDone = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const sub = await bus.subscribe({ group: 'lat', types: [type], concurrency: 64 }, (e) => {
    const d = e.data as { t: number; i: number };
    out.push({ side: 'bus', pub: d.t, handler: performance.now(), key: `events:${type}`, i: d.i });
    if (++busDone === half) finish();
  });
  let rawDone = 0;
  const consuming = (async () => {
    while (rawDone < half) {
      const res = (await con.xreadgroup('GROUP', 'g', 'c', 'COUNT', 500, 'BLOCK', 1000, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
      const entries = res?.[0][1] ?? [];
      const now = performance.now();
      for (const [, f] of entries) {
        const d = JSON.parse(f[1]) as { t: number; data: { i: number } };
        out.push({ side: 'raw', pub: d.t, handler: now, key: stream, i: d.data.i });
        rawDone++;
      }
      if (entries.length) await con.xack(stream, 'g', ...entries.map(([id]) => id));
    }
  })();
  await offer(PER_SEC, half * 2, (i) => {
    const j = i >> 1;
    if (i & 1) void pub.xadd(stream, '*', 'event', JSON.stringify({ id: randomUUID(), t: performance.now(), data: sample(j) }));
    else void bus.publish(type, { t: performance.now(), ...sample(j) });
  });
  await Promise.all([all, consuming]);
  await sub.close();
  pub.disconnect();
  con.disconnect();
  return out;
}

const loop = monitorEventLoopDelay({ resolution: 1 });
/** Each side's own windows' loop delay. */
const loopOf: Record<string, ReturnType<typeof monitorEventLoopDelay>> = {};
const windows: Record<string, (s: number) => Promise<Sample[]>> = {};
if (SIDE === 'together') windows.together = togetherWindow;
else {
  if (SIDE !== 'raw') windows.bus = busWindow;
  if (SIDE !== 'bus') windows.raw = rawWindow;
}
for (const w of Object.values(windows)) await w(1); // warm-up
cmds.length = 0;
gcs.length = 0;
ticks.length = 0;
sched.length = 0;
const pooled: Record<string, Sample[]> = {};
/** Per side: CPU of this process and of redis-server (ms), and the commands sent, over its windows. */
const cost: Record<string, { node: number; redis: number; cmds: Map<string, number> }> = {};
loop.enable();
for (let r = 0; r < REPS; r++) {
  for (const [name, w] of Object.entries(windows)) {
    global.gc?.();
    const c = (cost[name] ??= { node: 0, redis: 0, cmds: new Map() });
    const [cpu, redis0, n0] = [process.cpuUsage(), schedOf(redisSched)[0], cmds.length];
    const own = (loopOf[name] ??= monitorEventLoopDelay({ resolution: 1 }));
    own.enable();
    (pooled[name] ??= []).push(...(await w(SECONDS)));
    own.disable();
    const used = process.cpuUsage(cpu);
    c.node += (used.user + used.system) / 1000;
    c.redis += (schedOf(redisSched)[0] - redis0) / 1e6;
    for (const x of cmds.slice(n0)) c.cmds.set(x.name, (c.cmds.get(x.name) ?? 0) + 1);
  }
}
loop.disable();

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '  -  ');
console.log(`loop delay (1 ms resolution, all windows): p50 ${f(loop.percentile(50) / 1e6)} p99 ${f(loop.percentile(99) / 1e6)} max ${f(loop.max / 1e6)} ms`);
if (pooled.together) {
  pooled['bus (together)'] = pooled.together.filter((x) => x.side === 'bus');
  pooled['raw (together)'] = pooled.together.filter((x) => x.side === 'raw');
  cost['bus (together)'] = cost['raw (together)'] = cost.together!;
  loopOf['bus (together)'] = loopOf['raw (together)'] = loopOf.together!;
  delete pooled.together;
}
for (const [name, xs] of Object.entries(pooled)) {
  const lat = xs.map((s) => s.handler - s.pub);
  console.log(`\n## ${name}: ${xs.length} samples, p50 ${f(percentile(lat, 50))} p90 ${f(percentile(lat, 90))} p99 ${f(percentile(lat, 99))} ms`);
  const c = cost[name];
  const l = loopOf[name];
  console.log(`  loop delay in its windows: p50 ${f(l.percentile(50) / 1e6)} p99 ${f(l.percentile(99) / 1e6)} p99.9 ${f(l.percentile(99.9) / 1e6)} max ${f(l.max / 1e6)} ms`);
  console.log(`  CPU per event: node ${f((c.node * 1000) / xs.length)} us, redis-server ${f((c.redis * 1000) / xs.length)} us; commands per 1000 events: ${[...c.cmds].map(([k, v]) => `${k} ${Math.round((v * 1000) / xs.length)}`).join(', ')}`);
  // Stages: publish call -> XADD written -> XADD reply parsed; the read that returned it (written, reply parsed) -> handler.
  const rows = xs.map((s) => {
    const id = idOf.get(`${s.key}\n${s.i}`);
    const a = id ? added.get(id) : undefined;
    const rd = id ? readBy.get(id) : undefined;
    return { s, lat: s.handler - s.pub, a, rd };
  });
  const stage = (pick: (r: (typeof rows)[number]) => number) => {
    const v = rows.map(pick).filter(Number.isFinite);
    return `p50 ${f(percentile(v, 50))} p99 ${f(percentile(v, 99))}`;
  };
  console.log(`  publish -> XADD written   ${stage((r) => (r.a ? r.a.sent - r.s.pub : NaN))}`);
  console.log(`  XADD written -> reply     ${stage((r) => (r.a ? r.a.reply - r.a.sent : NaN))}`);
  console.log(`  XADD written -> read reply ${stage((r) => (r.a && r.rd ? r.rd.reply - r.a.sent : NaN))}`);
  console.log(`  read reply -> handler     ${stage((r) => (r.rd ? r.s.handler - r.rd.reply : NaN))}`);
  // Samples during which neither this process' main thread nor redis-server waited for a CPU
  // (scheduler counters between the ticks around the sample): the tail our own code makes.
  const waitAround = (x: Sample) => {
    let k0 = 0;
    while (k0 + 1 < sched.length && sched[k0 + 1].t <= x.pub) k0++;
    let k1 = k0;
    while (k1 + 1 < sched.length && sched[k1].t < x.handler) k1++;
    return (sched[k1].nodeWait - sched[k0].nodeWait + sched[k1].redisWait - sched[k0].redisWait) / 1e6;
  };
  const quietRows = rows.filter((r) => waitAround(r.s) < 0.05);
  const quiet = quietRows.map((r) => r.lat);
  console.log(`  no CPU wait around the sample: ${quiet.length} samples, p50 ${f(percentile(quiet, 50))} p99 ${f(percentile(quiet, 99))} ms`);
  if (process.env.QUIET) {
    console.log('  slowest 2% of those: lat | pub->xaddW | xaddW->reply | xaddW->readReply (read written rel. xaddW) | readReply->handler | gc | published in the same ms');
    for (const r of [...quietRows].sort((a, b) => b.lat - a.lat).slice(0, Math.ceil(quietRows.length / 50))) {
      const { s, a, rd } = r;
      const gc = gcs.filter((g) => g.end > s.pub && g.start < s.handler).map((g) => f(g.end - g.start)).join(',');
      const near = xs.filter((x) => Math.abs(x.pub - s.pub) < 1 && x !== s).length;
      console.log(`  ${f(r.lat)} | ${a ? f(a.sent - s.pub) : '-'} | ${a ? f(a.reply - a.sent) : '-'} | ${a && rd ? `${f(rd.reply - a.sent)} (${f(rd.sent - a.sent)})` : '-'} | ${rd ? f(s.handler - rd.reply) : '-'} | ${gc} | ${near}`);
    }
  }
  console.log(`  read written after XADD written: ${rows.filter((r) => r.a && r.rd && r.rd.sent > r.a.sent).length} of ${rows.length}`);
  const slow = [...rows].sort((a, b) => b.lat - a.lat).slice(0, Math.ceil(rows.length / 100));
  let gcHit = 0;
  console.log('  slowest 1%: lat | pub->xaddW | xaddW->reply | xaddW->readReply (read written rel. xaddW, block) | readReply->handler | max tick gap | node run/wait | redis run/wait (ms, ticks around) | gc');
  for (const r of slow) {
    const { s, a, rd } = r;
    const gc = gcs.some((g) => g.end > s.pub && g.start < s.handler);
    if (gc) gcHit++;
    let gap = 0;
    for (let k = 1; k < ticks.length; k++) if (ticks[k] > s.pub && ticks[k - 1] < s.handler) gap = Math.max(gap, ticks[k] - ticks[k - 1]);
    // Scheduler counters from the last tick before the publish to the first after the handler.
    let k0 = sched.findIndex((x) => x.t > s.pub) - 1;
    let k1 = sched.findIndex((x) => x.t >= s.handler);
    if (k0 < 0) k0 = 0;
    if (k1 < 0) k1 = sched.length - 1;
    const d = (fld: 'nodeRun' | 'nodeWait' | 'redisRun' | 'redisWait') => f((sched[k1][fld] - sched[k0][fld]) / 1e6);
    console.log(
      `  ${f(r.lat)} | ${a ? f(a.sent - s.pub) : '-'} | ${a ? f(a.reply - a.sent) : '-'} | ${a && rd ? `${f(rd.reply - a.sent)} (${f(rd.sent - a.sent)}, ${rd.block ? 'B' : 'nb'})` : '-'} | ${rd ? f(s.handler - rd.reply) : '-'} | ${f(gap)} | ${d('nodeRun')}/${d('nodeWait')} | ${d('redisRun')}/${d('redisWait')} (${f(sched[k1].t - sched[k0].t)}) | ${gc ? 'gc' : ''}`,
    );
    if (process.env.TRACE_ALL) {
      for (const c of cmds) if (c.sent < s.handler && c.sent > s.pub - 50 && (c.reply === 0 || c.reply > s.pub - 1)) console.log(`      conn ${c.conn} ${c.name} ${c.key.slice(0, 30)} sent ${f(c.sent - s.pub)} reply ${c.reply === 0 ? '-' : f(c.reply - s.pub)}`);
    }
  }
  console.log(`  gc overlapping a slow sample: ${gcHit} of ${slow.length}`);
}
await bus.close();
await server.stop();
process.exit(0);
