import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { printTable, rate, sample, worker, type Row } from './util.js';

const N = Number(process.env.BENCH_N || 200_000);
const dir = mkdtempSync(join(tmpdir(), 'agentbus-bench-'));
const silent = pino({ level: 'silent' });
let files = 0;
const fresh = () => join(dir, `b${files++}.db`);

function rawDb(path: string) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE raw_events (seq INTEGER PRIMARY KEY, type TEXT, body TEXT); CREATE TABLE raw_cursor (seq INTEGER); INSERT INTO raw_cursor VALUES (0);');
  return db;
}

async function publishBatch(): Promise<Row> {
  const bus = await createSqliteBus({ path: fresh(), logger: silent });
  let t = performance.now();
  for (let i = 0; i < N; i += 1000) await bus.publishBatch(Array.from({ length: 1000 }, (_, j) => ({ type: 'bench.batch', data: sample(i + j) })));
  const ours = rate(N, performance.now() - t);
  await bus.close();
  const db = rawDb(fresh());
  const ins = db.prepare('INSERT INTO raw_events (type, body) VALUES (?, ?)');
  const tx = db.transaction((i: number) => {
    for (let j = 0; j < 1000; j++) ins.run('bench.batch', JSON.stringify({ id: randomUUID(), time: new Date().toISOString(), data: sample(i + j) }));
  });
  t = performance.now();
  for (let i = 0; i < N; i += 1000) tx(i);
  const raw = rate(N, performance.now() - t);
  db.close();
  return { scenario: `publishBatch, batches of 1000 (${N} events)`, agentbus: ours, baseline: raw, baselineName: 'raw batched inserts', goal: '>= 150k/s' };
}

async function concurrentPublish(): Promise<Row> {
  const n = N / 2;
  const bus = await createSqliteBus({ path: fresh(), logger: silent });
  let t = performance.now();
  await Promise.all(Array.from({ length: 100 }, async (_, c) => {
    for (let i = 0; i < n / 100; i++) await bus.publish('bench.single', sample(c * 1000 + i));
  }));
  const ours = rate(n, performance.now() - t);
  await bus.close();
  const db = rawDb(fresh());
  const ins = db.prepare('INSERT INTO raw_events (type, body) VALUES (?, ?)');
  t = performance.now();
  for (let i = 0; i < n / 4; i++) ins.run('bench.single', JSON.stringify({ id: randomUUID(), data: sample(i) }));
  const raw = rate(n / 4, performance.now() - t);
  db.close();
  return { scenario: `publish() from 100 concurrent callers (${n} events)`, agentbus: ours, baseline: raw, baselineName: 'raw autocommit inserts', goal: '>= 40k/s' };
}

async function drainInProcess(): Promise<Row> {
  const path = fresh();
  const bus = await createSqliteBus({ path, logger: silent });
  for (let i = 0; i < N; i += 1000) await bus.publishBatch(Array.from({ length: 1000 }, (_, j) => ({ type: 'bench.drain', data: sample(i + j) })));
  let seen = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const t = performance.now();
  const sub = await bus.subscribe({ group: 'bench', types: ['bench.drain'], from: 'earliest', concurrency: 64 }, () => {
    if (++seen === N) finish();
  });
  await all;
  const ours = rate(N, performance.now() - t);
  await sub.close();
  await bus.close();
  const raw = await twoProcesses('raw', { publishFirst: true });
  return { scenario: `drain a backlog, 1 subscription, concurrency 64 (${N} events)`, agentbus: ours, baseline: raw, baselineName: 'raw poll+parse+cursor', goal: '-' };
}

/** Publisher and consumer in two processes on one file; events/s from the publisher's start to the consumer's last event. */
async function twoProcesses(kind: 'agentbus' | 'raw', o: { publishFirst?: boolean } = {}): Promise<number> {
  const path = fresh();
  if (kind === 'raw') rawDb(path).close();
  else await (await createSqliteBus({ path, logger: silent })).close();
  const args = { path, n: N, type: 'bench.e2e' };
  if (o.publishFirst) await worker('sqlite-worker.ts', { ...args, role: `${kind}-pub` }).done;
  const sub = worker('sqlite-worker.ts', { ...args, role: `${kind}-sub` });
  while (!sub.lines.some((l) => l.includes('ready'))) await new Promise((r) => setTimeout(r, 20));
  const t0 = Date.now();
  const pub = o.publishFirst ? null : worker('sqlite-worker.ts', { ...args, role: `${kind}-pub` });
  const [pubOut, subOut] = await Promise.all([pub?.done, sub.done]);
  const start = o.publishFirst ? t0 : pubOut![0].start;
  return rate(N, subOut.find((x) => x.end)!.end - start);
}

export async function sqliteBench(): Promise<Row[]> {
  const rows = [await publishBatch(), await concurrentPublish(), await drainInProcess()];
  rows.push({
    scenario: `publisher process + consumer process, one file (${N} events)`,
    agentbus: await twoProcesses('agentbus'),
    baseline: await twoProcesses('raw'),
    baselineName: 'raw poll+parse+cursor',
    goal: '>= 80k/s',
  });
  printTable('SQLite (better-sqlite3, WAL, synchronous=NORMAL)', rows);
  return rows;
}
