// SQLite-specific behaviour: which files the adapter opens, and read-only opening. Real files in a temp dir.
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { rejects, uniq, waitFor } from './helpers/index.js';

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

test.run();
