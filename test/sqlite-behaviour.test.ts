// SQLite-specific behaviour: which files the adapter opens, read-only opening, and how a consumer in
// another process is woken. Real files in a temp dir.
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { rejects, sleep, uniq, waitFor } from './helpers/index.js';
import { startChild } from './conformance/processes.js';
import { CHECKPOINT_EVERY_MS, withCheckpoints } from '../adapters/sqlite/checkpoints.js';
import { wakeupsFor } from '../adapters/sqlite/wakeups.js';

const quiet = pino({ level: 'silent' });
const dir = () => mkdtempSync(join(tmpdir(), 'agentbus-sqlite-'));

/** Another application's database: its own table, its own user_version, rollback journal. */
function foreignFile(): string {
  const path = join(dir(), 'app.db');
  const db = new Database(path);
  db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ada');");
  db.pragma('user_version = 7');
  db.close();
  return path;
}

/**
 * A file as agentbus 0.1.0 (schema version 1) left it: one event, its topic, a group with its cursor
 * and one dead letter, written with that version's DDL (test/fixtures/sqlite-schema-v1.sql).
 */
function versionOneFile(type: string, group: string): string {
  const path = join(dir(), 'old.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(readFileSync('test/fixtures/sqlite-schema-v1.sql', 'utf8'));
  db.pragma('user_version = 1');
  const body = JSON.stringify({ specversion: '1.0', id: 'old-1', type, source: '/old', time: new Date().toISOString(), data: { n: 1 } });
  db.prepare('INSERT INTO events (seq, topic, stored, body) VALUES (1, ?, ?, ?)').run(type, Date.now(), body);
  db.prepare('INSERT INTO topics (name) VALUES (?)').run(type);
  db.prepare('INSERT INTO groups (grp, start) VALUES (?, 0)').run(group);
  db.prepare('INSERT INTO cursors (grp, topic, seq) VALUES (?, ?, 1)').run(group, type);
  db.prepare('INSERT INTO dead_letters (grp, topic, seq, body, reason, error, attempts, failed_at) VALUES (?, ?, 1, ?, ?, ?, 5, ?)').run(group, type, body, 'failed', 'Error: old failure', Date.now());
  db.close();
  return path;
}

test('a version-1 file: read as it is when read-only; migrated in place to version 6 (dead-letter stacks, keyed state tables, due entries with names, waits) when opened for writing, its dead letters kept', async () => {
  const type = uniq('old');
  const group = uniq('g');
  const path = versionOneFile(type, group);
  const version = () => {
    const db = new Database(path, { readonly: true });
    const v = [db.pragma('user_version', { simple: true }), (db.pragma('table_info(dead_letters)') as { name: string }[]).some((c) => c.name === 'stack')];
    db.close();
    return v;
  };

  const reader = await createSqliteBus({ path, readonly: true, logger: quiet });
  const [old] = await reader.deadLetters.list({ group });
  assert.equal([old.error, old.attempts, old.event?.id, 'stack' in old], ['Error: old failure', 5, 'old-1', false]);
  assert.is((await reader.stats()).find((t) => t.type === type)?.length, 1);
  await reader.close();
  assert.equal(version(), [1, false], 'read-only changed nothing');

  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }));
  const bus = await createSqliteBus({ path, logger });
  assert.equal(version(), [6, true]);
  assert.ok(lines.some((l) => l.from === 1 && l.to === 6 && String(l.msg).includes('migrated from version 1 to 6')), JSON.stringify(lines));
  assert.ok(lines.some((l) => l.msg === `store: SQLite ${path}`), 'the store is named');
  assert.equal(await bus.deadLetters.list({ group }), [old], 'the old dead letter lists as before');
  const got: unknown[] = [];
  const sub = await bus.subscribe({ group, types: [type], maxAttempts: 1 }, (e) => {
    if (e.data === 'fail') throw new Error('new failure');
    got.push(e.data);
  });
  assert.is(await bus.deadLetters.retry([old.id]), 1, 'a version-1 dead letter retries');
  await waitFor('the retried event handled', () => got.length === 1);
  await bus.publish(type, 'fail');
  await waitFor('a new dead letter', async () => (await bus.deadLetters.list({ group })).length === 1);
  const [fresh] = await bus.deadLetters.list({ group });
  assert.ok(fresh.stack!.startsWith('Error: new failure\n'), fresh.stack);
  await sub.close();
  await bus.close();

  lines.length = 0;
  const again = await createSqliteBus({ path, logger });
  assert.not.ok(lines.some((l) => 'from' in l), 'a version-5 file is not migrated again');
  assert.equal(await again.deadLetters.list({ group }), [fresh]);
  await again.close();
});

/** A file as agentbus left it at schema version 3 (test/fixtures/sqlite-schema-v3.sql), before delayed publishes: one event. */
function versionThreeFile(type: string): string {
  const path = join(dir(), 'v3.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(readFileSync('test/fixtures/sqlite-schema-v3.sql', 'utf8'));
  db.pragma('user_version = 3');
  const body = JSON.stringify({ specversion: '1.0', id: 'v3-1', type, source: '/old', time: new Date().toISOString(), data: { n: 1 } });
  db.prepare('INSERT INTO events (seq, topic, stored, body) VALUES (1, ?, ?, ?)').run(type, Date.now(), body);
  db.prepare('INSERT INTO topics (name) VALUES (?)').run(type);
  db.close();
  return path;
}

test('a version-3 file: read-only, it has no due entries and is left as it is; opened for writing, it migrates to 6, keeps its events and takes delayed publishes', async () => {
  const type = uniq('v3');
  const path = versionThreeFile(type);
  const info = () => {
    const db = new Database(path, { readonly: true });
    const v = [db.pragma('user_version', { simple: true }), (db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE name IN ('due', 'due_by_time', 'agent_wait')").get() as { n: number }).n];
    db.close();
    return v;
  };
  const reader = await createSqliteBus({ path, readonly: true, logger: quiet });
  assert.equal((await reader.stats()).find((t) => t.type === type), { type, length: 1, groups: [], due: 0 });
  await reader.close();
  assert.equal(info(), [3, 0], 'read-only changed nothing');

  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }));
  const bus = await createSqliteBus({ path, logger });
  assert.equal(info(), [6, 3]);
  assert.ok(lines.some((l) => l.from === 3 && l.to === 6 && String(l.msg).includes('migrated from version 3 to 6')), JSON.stringify(lines));
  const got: string[] = [];
  const sub = await bus.subscribe({ group: uniq('g'), types: [type], from: 'earliest' }, (e) => void got.push(e.id));
  const id = await bus.publish(type, 2, { delay: 200 });
  await waitFor('the old event and the delayed one', () => got.length === 2, 5000);
  assert.equal(got, ['v3-1', id]);
  await sub.close();
  await bus.close();
});

/** A file as agentbus left it at schema version 4 (test/fixtures/sqlite-schema-v4.sql), before named delayed events: one due row. */
function versionFourFile(type: string, dueAt: number): string {
  const path = join(dir(), 'v4.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(readFileSync('test/fixtures/sqlite-schema-v4.sql', 'utf8'));
  db.pragma('user_version = 4');
  const body = JSON.stringify({ specversion: '1.0', id: 'v4-due', type, source: '/old', time: new Date().toISOString(), data: { n: 1 } });
  db.prepare('INSERT INTO due (topic, due_at, body) VALUES (?, ?, ?)').run(type, dueAt, body);
  db.prepare('INSERT INTO topics (name) VALUES (?)').run(type);
  db.close();
  return path;
}

test('a version-4 file: read-only, its due rows list unnamed and it is left as it is; opened for writing, it migrates to 6, keeps the due row and takes named ones', async () => {
  const type = uniq('v4');
  const path = versionFourFile(type, Date.now() + 60_000);
  const info = () => {
    const db = new Database(path, { readonly: true });
    const v = [db.pragma('user_version', { simple: true }), (db.pragma('table_info(due)') as { name: string }[]).some((c) => c.name === 'name')];
    db.close();
    return v;
  };
  const reader = await createSqliteBus({ path, readonly: true, logger: quiet });
  assert.equal((await reader.schedules!.list()).map((p) => [p.type, p.name, p.event?.id]), [[type, null, 'v4-due']]);
  await reader.close();
  assert.equal(info(), [4, false], 'read-only changed nothing');

  const bus = await createSqliteBus({ path, logger: quiet });
  assert.equal(info(), [6, true]);
  await bus.publish(type, 2, { delay: 60_000, name: 'n' });
  await bus.publish(type, 3, { delay: 60_000, name: 'n' });
  assert.equal((await bus.schedules!.list()).map((p) => [p.name, p.event?.data]), [[null, { n: 1 }], ['n', 3]]);
  assert.is(await bus.schedules!.cancel('n'), true);
  await bus.close();
});

test('a file of a newer schema version is refused, untouched, naming the versions this agentbus reads', async () => {
  const path = versionOneFile(uniq('new'), uniq('g'));
  const db = new Database(path);
  db.pragma('user_version = 7');
  db.close();
  const before = readFileSync(path);
  for (const readonly of [false, true]) {
    await rejects(() => createSqliteBus({ path, readonly, logger: quiet }), 'CONNECTION_FAILED', path, 'schema version 7, this agentbus reads versions 1 to 6');
  }
  assert.ok(readFileSync(path).equals(before), 'the file changed');
});

test("another application's file is refused, naming the file and what it holds, and left byte for byte unchanged", async () => {
  const path = foreignFile();
  const before = readFileSync(path);
  for (const readonly of [false, true]) {
    await rejects(() => createSqliteBus({ path, readonly, logger: quiet }), 'CONNECTION_FAILED', path, '1 table of another application (users; user_version 7)', 'no agentbus schema');
  }
  assert.ok(readFileSync(path).equals(before), 'the file changed');
  assert.equal(readdirSync(join(path, '..')), ['app.db'], 'files were created next to it');
  const db = new Database(path, { readonly: true });
  assert.is(db.pragma('user_version', { simple: true }), 7);
  assert.is(db.pragma('journal_mode', { simple: true }), 'delete');
  db.close();
});

test('readonly: a missing file is not created (nor its folder); an empty file is not an agentbus database', async () => {
  const folder = join(dir(), 'not-yet');
  const path = join(folder, 'bus.db');
  await rejects(() => createSqliteBus({ path, readonly: true, logger: quiet }), 'CONNECTION_FAILED', `no agentbus database at ${path}`, 'start a host or publish first');
  assert.not.ok(existsSync(folder), 'readonly created the folder');
  const empty = join(dir(), 'empty.db');
  new Database(empty).close();
  await rejects(() => createSqliteBus({ path: empty, readonly: true, logger: quiet }), 'CONNECTION_FAILED', 'no agentbus database');
  await rejects(() => createSqliteBus({ path: ':memory:', readonly: true }), 'INVALID_OPTION', 'readonly', ':memory:');
  await rejects(() => createSqliteBus({ path, readonly: 'yes' as never }), 'INVALID_OPTION', 'readonly "yes"');
});

test('readonly: reads a live file another bus writes; every write is refused naming the option', async () => {
  const path = join(dir(), 'bus.db');
  const writer = await createSqliteBus({ path, logger: quiet });
  const type = uniq('seen');
  const group = uniq('g');
  const sub = await writer.subscribe({ group, types: [type], maxAttempts: 1 }, (e) => {
    if (e.data === 1) throw new Error('no');
  });
  await writer.publish(type, 1);
  await waitFor('a dead letter', async () => (await writer.deadLetters.list({ group })).length === 1);
  const reader = await createSqliteBus({ path, readonly: true, logger: quiet, retention: { maxLen: 1, intervalMs: 10 } });
  await writer.publish(type, 2);
  const stats = (await reader.stats()).find((t) => t.type === type)!;
  assert.is(stats.length, 2);
  assert.is(stats.groups[0].deadLetters, 1);
  const [dl] = await reader.deadLetters.list({ group });
  assert.is((await reader.deadLetters.get(dl.id))?.error, dl.error);
  const seen: unknown[] = [];
  await reader.replay({ types: [type] }, (e) => void seen.push(e.data));
  assert.equal(seen, [1, 2]);
  const refused = (fn: () => Promise<unknown>) => rejects(fn, 'INVALID_OPTION', 'readonly: true', path);
  await refused(() => reader.publish(type, 3));
  await refused(() => reader.publishBatch([{ type, data: 3 }]));
  await refused(() => reader.subscribe({ group: uniq('g'), types: [type] }, () => {}));
  await refused(() => reader.rewind({ group, type, from: 'earliest' }));
  await refused(() => reader.deadLetters.retry([dl.id]));
  await refused(() => reader.deadLetters.purge([dl.id]));
  await refused(() => reader.trim());
  await new Promise((r) => setTimeout(r, 50)); // the retention timer runs and does nothing
  assert.is((await writer.stats()).find((t) => t.type === type)!.length, 2, 'a read-only bus changed the file');
  assert.is((await writer.deadLetters.list({ group })).length, 1);
  await reader.close();
  await sub.close();
  await writer.close();
});

test('a consumer in another process wakes on the commit, not at its poll: 10 hops with pollMs 10 s', async () => {
  const path = join(dir(), 'bus.db');
  const bus = await createSqliteBus({ path, logger: quiet, pollMs: 10_000 });
  const type = uniq('hop');
  const consumer = startChild({ bus: { adapter: 'sqlite', path, pollMs: 10_000 }, role: 'consume', type, group: uniq('g'), concurrency: 1 });
  try {
    await waitFor('consumer ready', () => consumer.lines.includes('ready'), 20_000);
    // Each publish lands while the consumer waits: with its poll at 10 s, only the wake-up through
    // the file hands it over before the wait's end (the read's 1 s block, or the poll).
    const hops: number[] = [];
    for (let i = 0; i < 10; i++) {
      await sleep(50);
      const t = performance.now();
      const id = await bus.publish(type, { i });
      const handled = () => consumer.lines.some((l) => l.startsWith(`got ${id} `));
      await waitFor(`event ${i} handled`, handled, 5000, 1).catch(() => {});
      hops.push(handled() ? Math.round(performance.now() - t) : Infinity);
    }
    // Typically ~1 ms each; a loaded machine may stall a few, so 8 of 10 under 250 ms (a wait that
    // ran to its end would put every one near 950 ms or later).
    assert.ok(hops.filter((ms) => ms < 250).length >= 8, `hops in ms: ${hops.join(', ')}`);
  } finally {
    consumer.proc.kill('SIGTERM');
    await consumer.exited;
    await bus.close();
  }
});

test('a hop in one process: the publish claims the event for the waiting consumer in its own transaction, without a savepoint or reading the event back; no read transaction takes nothing', async () => {
  const statements: string[] = [];
  const db = new Database(join(dir(), 'bus.db'), { verbose: (sql) => statements.push(String(sql)) });
  const bus = await createSqliteBus({ database: db, logger: quiet });
  const type = uniq('hop');
  const handled: string[] = [];
  // The handler takes a while: the read the consumer sends meanwhile carries no ack and finds nothing.
  const sub = await bus.subscribe({ group: uniq('g'), types: [type], concurrency: 2 }, async (e) => {
    await sleep(20);
    handled.push(e.id);
  });
  await sleep(100); // the consumer is waiting
  statements.length = 0;
  const id = await bus.publish(type, { n: 1 });
  await waitFor('handled', () => handled.length === 1);
  await waitFor('acknowledged', () => statements.some((s) => s.startsWith('DELETE FROM pending')));
  await sub.close();
  await bus.close();
  db.close();
  // The statements of each BEGIN IMMEDIATE ... COMMIT.
  const txs: string[][] = [];
  for (const s of statements) {
    if (s === 'BEGIN IMMEDIATE') txs.push([]);
    else if (s !== 'COMMIT') txs.at(-1)?.push(s);
  }
  const append = txs.find((tx) => tx.some((s) => s.startsWith('INSERT INTO events')))!;
  assert.ok(append.some((s) => s.startsWith('INSERT OR REPLACE INTO pending')), `the append's transaction claims the event too:\n${append.join('\n')}`);
  // The claim costs a tenth of a hop less without them: the append has the body, and a failed claim reruns the append (next test).
  assert.not.ok(append.some((s) => s.startsWith('SAVEPOINT')), `no savepoint:\n${append.join('\n')}`);
  assert.not.ok(append.some((s) => /^SELECT seq, CASE/.test(s)), `the event is not read back:\n${append.join('\n')}`);
  const idle = txs.filter((tx) => !tx.some((s) => /^(INSERT|UPDATE|DELETE)/.test(s)));
  assert.is(idle.length, 0, `transactions that wrote nothing:\n${idle.map((tx) => tx.join('\n')).join('\n--\n')}`);
  assert.equal(handled, [id]);
});

test('a claim failing in the hand-off rolls the append back; it runs again without serving, and the consumer takes the event itself', async () => {
  const db = new Database(join(dir(), 'bus.db'));
  const bus = await createSqliteBus({ database: db, logger: quiet });
  const type = uniq('hop');
  const group = uniq('g');
  const handled: string[] = [];
  const sub = await bus.subscribe({ group, types: [type] }, (e) => void handled.push(e.id));
  await sleep(100); // the consumer is waiting: the publish serves it in its transaction
  // The next lease written inside an append's transaction fails (a trigger on this connection).
  let failures = 0;
  db.function('fail_claim', () => (failures === 0 ? (failures++, 1) : 0));
  db.exec("CREATE TEMP TRIGGER fail_claim BEFORE INSERT ON pending WHEN fail_claim() = 1 BEGIN SELECT RAISE(ABORT, 'claim refused'); END");
  const id = await bus.publish(type, { n: 1 });
  assert.is(failures, 1, 'the hand-off failed once');
  await waitFor('handled', () => handled.length === 1);
  assert.equal(handled, [id]);
  const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
  assert.is(count('SELECT COUNT(*) AS n FROM events'), 1, 'stored once: the rolled-back append left nothing');
  await sub.close();
  await bus.close();
  db.close();
});

test('a lone publish commits inside the publish() call; one made inside the caller\'s own transaction on the bus\' database waits for it, and is stored even when it rolls back', async () => {
  const path = join(dir(), 'bus.db');
  const db = new Database(path);
  const bus = await createSqliteBus({ database: db, logger: quiet });
  const other = new Database(path, { readonly: true });
  const stored = () => (other.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  const type = uniq('now');
  const first = bus.publish(type, { n: 1 });
  assert.is(stored(), 1, 'committed before publish() returned');
  await first;
  const idle = () => new Promise((r) => setImmediate(r)); // the append that stored it has ended
  await idle();
  // Two more in one turn: the first at once, the other in the next append.
  const two = [bus.publish(type, { n: 2 }), bus.publish(type, { n: 3 })];
  assert.is(stored(), 2);
  await Promise.all(two);
  assert.is(stored(), 3);
  await idle();
  let inside!: Promise<string>;
  assert.throws(() =>
    db.transaction(() => {
      inside = bus.publish(type, { n: 4 });
      throw new Error('the caller rolls back');
    })(),
  );
  assert.is(stored(), 3, 'not appended inside the caller\'s transaction');
  const id = await inside;
  assert.is(stored(), 4, 'appended after it, on its own');
  assert.is(typeof id, 'string');
  other.close();
  await bus.close();
  db.close();
});

test('a waiting read adds no listener of its own: one on the file\'s wake-ups per bus, one on each signal', async () => {
  const path = join(dir(), 'bus.db');
  const bus = await createSqliteBus({ path, logger: quiet });
  const wakeups = wakeupsFor(path);
  try {
    const before = wakeups.emitter.listenerCount('change');
    const subs = [];
    for (let i = 0; i < 5; i++) subs.push(await bus.subscribe({ group: uniq('g'), types: [uniq('t')] }, () => {}));
    await sleep(100); // every consumer is waiting
    assert.is(wakeups.emitter.listenerCount('change'), before, `listeners on 'change' with 5 reads waiting`);
    for (const s of subs) await s.close();
  } finally {
    wakeups.release();
    await bus.close();
  }
});

test('checkpoints run in a worker thread while the process writes: the WAL is copied back without the bus connection checkpointing in a commit', async () => {
  const path = join(dir(), 'bus.db');
  await (await createSqliteBus({ path, logger: quiet })).close(); // the schema
  // A writer that never checkpoints itself, as the bus' connection below its backstop.
  const db = new Database(path);
  db.pragma('wal_autocheckpoint = 0');
  const insert = db.prepare("INSERT INTO events (topic, stored, body) VALUES ('t', 0, ?)");
  for (let i = 0; i < 200; i++) insert.run('x'.repeat(3000));
  // The WAL index (the -shm file): the newest frame (mxFrame, offset 16) and how many frames a
  // checkpoint copied back (nBackfill, offset 96), little-endian on this machine.
  const shm = () => readFileSync(`${path}-shm`);
  const copied = () => shm().readUInt32LE(96) === shm().readUInt32LE(16);
  assert.ok(shm().readUInt32LE(16) > 100 && !copied(), 'frames waiting for a checkpoint');
  const wakeups = withCheckpoints(wakeupsFor(path), path);
  try {
    wakeups.wrote(); // a single write starts no worker
    await sleep(CHECKPOINT_EVERY_MS + 50);
    assert.not.ok(copied(), 'nothing checkpointed yet');
    wakeups.wrote();
    await waitFor('the worker checkpointed', copied, 10_000);
  } finally {
    wakeups.release();
    db.close();
  }
});

test("a publish to one topic does not make a waiting consumer of another topic read: no transaction names the other group", async () => {
  const statements: string[] = [];
  const db = new Database(join(dir(), 'bus.db'), { verbose: (sql) => statements.push(String(sql)) });
  const bus = await createSqliteBus({ database: db, logger: quiet });
  const [a, b] = [uniq('hop.a'), uniq('hop.b')];
  const other = uniq('other');
  const handled: string[] = [];
  const subs = [
    await bus.subscribe({ group: uniq('g'), types: [a] }, (e) => void handled.push(e.id)),
    await bus.subscribe({ group: other, types: [b] }, () => {}),
  ];
  await sleep(100); // both consumers are waiting
  statements.length = 0;
  await bus.publish(a, { n: 1 });
  await waitFor('handled', () => handled.length === 1);
  await sleep(50);
  const seen = [...statements];
  for (const sub of subs) await sub.close();
  await bus.close();
  db.close();
  const txs: string[][] = [];
  let inTx = false;
  for (const s of seen) {
    if (s === 'BEGIN IMMEDIATE') (inTx = true), txs.push([]);
    else if (s === 'COMMIT') inTx = false;
    else if (inTx) txs.at(-1)!.push(s);
  }
  const touching = txs.filter((tx) => tx.some((s) => s.includes(other)));
  assert.is(touching.length, 0, `transactions for ${other}:\n${touching.map((tx) => tx.join('\n')).join('\n--\n')}`);
});

test.run();
