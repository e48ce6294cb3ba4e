// SQLite hop latency, publish() -> handler, at fixed offered loads: publisher and consumer in one
// process, and in two processes on one file (the consumer in bench/sqlite-latency-worker.ts). Both
// sides stamp with process.hrtime (CLOCK_MONOTONIC, one clock for every process on the machine).
// After a discarded warm-up window, BENCH_LAT_REPS windows (default 3) per side are pooled. Then
// the floor: the hop's statements alone at the same loads (sqlite-floor.ts).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import type { Bus } from '../bus/contract.js';
import { nowMs, offer, percentile, sample, worker } from './util.js';
import { hopFloor } from './sqlite-floor.js';

const REPS = Number(process.env.BENCH_LAT_REPS || 3);
const RATES = [200, 5000];
const silent = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'agentbus-bench-lat-'));
let files = 0;
const fresh = () => join(dir, `l${files++}.db`);
const seconds = (perSec: number) => (perSec >= 5000 ? 2 : 3);

/** One window in one process: `perSec` publishes a second for `secs` seconds; the hop of each. */
async function inProcessWindow(bus: Bus, perSec: number, secs: number): Promise<number[]> {
  const type = `bench.lat.${perSec}.${files++}`;
  const total = perSec * secs;
  const lat: number[] = [];
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const sub = await bus.subscribe({ group: 'lat', types: [type], concurrency: 64 }, (e) => {
    lat.push(nowMs() - (e.data as { t: number }).t);
    if (lat.length === total) finish();
  });
  await offer(perSec, total, (i) => void bus.publish(type, { t: nowMs(), ...sample(i) }));
  await all;
  await sub.close();
  return lat;
}

async function inProcess(perSec: number): Promise<number[]> {
  const bus = await createSqliteBus({ path: fresh(), logger: silent });
  await inProcessWindow(bus, perSec, 1); // warm-up
  const pooled: number[] = [];
  for (let r = 0; r < REPS; r++) {
    global.gc?.();
    pooled.push(...(await inProcessWindow(bus, perSec, seconds(perSec))));
  }
  await bus.close();
  return pooled;
}

/**
 * `n` hops one at a time in one process, each publish right after the last handler ran (and its
 * ack's transaction): the hop's own path with a warm CPU, no wait between events, the bus against
 * itself rather than against the offered-load windows above, where a cold CPU adds its share.
 */
async function warmHops(n: number): Promise<number[]> {
  const bus = await createSqliteBus({ path: fresh(), logger: silent });
  const type = `bench.warm.${files++}`;
  const lat: number[] = [];
  let next!: () => void;
  const sub = await bus.subscribe({ group: 'warm', types: [type], concurrency: 64 }, (e) => {
    lat.push(nowMs() - (e.data as { t: number }).t);
    next();
  });
  for (let i = 0; i < n; i++) {
    const handled = new Promise<void>((r) => (next = r));
    void bus.publish(type, { t: nowMs(), ...sample(i) });
    await handled;
    await new Promise((r) => setImmediate(r));
  }
  await sub.close();
  await bus.close();
  return lat.slice(n / 10); // the first tenth warms up
}

/** The consumer in its own process on the file; this process publishes. Same windows as inProcess. */
async function crossProcess(perSec: number): Promise<number[]> {
  const path = fresh();
  const bus = await createSqliteBus({ path, logger: silent });
  const type = `bench.xlat.${perSec}`;
  const warm = perSec;
  const windows = REPS * perSec * seconds(perSec);
  const sub = worker('sqlite-latency-worker.ts', { path, type, warm, total: warm + windows });
  while (!sub.lines.some((l) => l.includes('ready'))) await new Promise((r) => setTimeout(r, 20));
  let sent = 0;
  const send = () => void bus.publish(type, { t: nowMs(), ...sample(sent++) });
  await offer(perSec, warm, send);
  for (let r = 0; r < REPS; r++) {
    global.gc?.();
    await offer(perSec, perSec * seconds(perSec), send);
  }
  const out = await sub.done;
  await bus.close();
  return (out.find((o) => 'lat' in o) as unknown as { lat: number[] }).lat;
}

export async function sqliteLatencyBench(): Promise<void> {
  const lines: string[] = [];
  for (const perSec of RATES) {
    const one = await inProcess(perSec);
    const two = await crossProcess(perSec);
    for (const p of [50, 99] as const) {
      const goal = p === 50 ? '<= 0.1 ms / <= 1 ms' : '<= 1 ms / <= 5 ms';
      lines.push(`| hop p${p} at ${perSec.toLocaleString('en-US')}/s (${REPS} windows of ${seconds(perSec)} s, pooled) | ${percentile(one, p).toFixed(2)} ms | ${percentile(two, p).toFixed(2)} ms | ${goal} |`);
    }
  }
  console.log('\n## SQLite hop latency, publish() -> handler (one file, WAL)\n');
  console.log('| scenario | publisher and consumer in one process | in two processes | goal (one / two) |');
  console.log('|---|---:|---:|---|');
  for (const l of lines) console.log(l);
  const warm = await warmHops(10_000);
  console.log(`\nOne process, one hop at a time (each publish right after the last handler ran; warm CPU): p50 ${Math.round(percentile(warm, 50) * 1000)} us, p99 ${Math.round(percentile(warm, 99) * 1000)} us over ${warm.length.toLocaleString('en-US')} hops.`);
  console.log('\n## SQLite hop floor: its statements alone, no bus (bench/sqlite-floor.ts)\n');
  console.log('| at | the hop\'s transaction (append, claim, commit) p50 / p99 | a bare append (BEGIN, INSERT, COMMIT) p50 / p99 |');
  console.log('|---|---:|---:|');
  const us = (xs: number[], p: number) => `${Math.round(percentile(xs, p) * 1000)} us`;
  for (const perSec of RATES) {
    const f = await hopFloor(fresh(), perSec, seconds(perSec), REPS);
    console.log(`| ${perSec.toLocaleString('en-US')}/s (${REPS} windows of ${seconds(perSec)} s, pooled) | ${us(f.hop, 50)} / ${us(f.hop, 99)} | ${us(f.append, 50)} / ${us(f.append, 99)} |`);
  }
}
