// One side of a two-process SQLite benchmark. Prints JSON lines: {"start": ms} / {"end": ms, "n": count}.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { sample } from './util.js';

const { role, path, n, type } = JSON.parse(process.argv[2]) as { role: string; path: string; n: number; type: string };
const say = (o: object) => console.log(JSON.stringify(o));

if (role === 'agentbus-pub') {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  say({ start: Date.now() });
  for (let i = 0; i < n; i += 1000) await bus.publishBatch(Array.from({ length: 1000 }, (_, j) => ({ type, data: sample(i + j) })));
  say({ end: Date.now(), n });
  await bus.close();
} else if (role === 'agentbus-sub') {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  let seen = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const sub = await bus.subscribe({ group: 'bench', types: [type], from: 'earliest', concurrency: Number(process.env.BENCH_CONCURRENCY || 64) }, () => {
    if (++seen === n) finish();
  });
  say({ ready: 1 });
  await all;
  say({ end: Date.now(), n: seen });
  await sub.close();
  await bus.close();
} else if (role === 'raw-pub') {
  // What a user would write by hand: batched transactions of single-row inserts, JSON per event.
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  const ins = db.prepare('INSERT INTO raw_events (type, body) VALUES (?, ?)');
  const tx = db.transaction((i: number) => {
    for (let j = 0; j < 1000; j++) ins.run(type, JSON.stringify({ id: randomUUID(), type, time: new Date().toISOString(), data: sample(i + j) }));
  });
  say({ start: Date.now() });
  for (let i = 0; i < n; i += 1000) tx.immediate(i);
  say({ end: Date.now(), n });
  db.close();
} else if (role === 'raw-sub') {
  // A hand-written consumer: poll past a cursor, parse, move the cursor in an IMMEDIATE transaction.
  const db = new Database(path);
  db.pragma('busy_timeout = 5000');
  const next = db.prepare('SELECT seq, body FROM raw_events WHERE seq > ? ORDER BY seq LIMIT 1000');
  const move = db.prepare('UPDATE raw_cursor SET seq = ?');
  const take = db.transaction(() => {
    const cursor = (db.prepare('SELECT seq FROM raw_cursor').get() as { seq: number }).seq;
    const rows = next.all(cursor) as { seq: number; body: string }[];
    for (const r of rows) JSON.parse(r.body);
    if (rows.length) move.run(rows[rows.length - 1].seq);
    return rows.length;
  });
  say({ ready: 1 });
  let seen = 0;
  while (seen < n) {
    const got = take.immediate();
    seen += got;
    if (got === 0) await new Promise((r) => setTimeout(r, 5));
  }
  say({ end: Date.now(), n: seen });
  db.close();
}
