// The SQLite StateStore of keyed agents (adapters/sqlite/state.ts) on a real file in a temp dir, and
// on :memory: where the two differ (no WAL, one connection): owners and epochs, takeOver, load and
// commit with their version and epoch checks, TTL and its housekeeping, inspection and erase,
// read-only files and the 2 -> 3 schema migration, and the crash hook.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import type { Bus } from '../bus/contract.js';
import type { Delivery } from '../bus/driver.js';
import type { StateWrite } from '../bus/state.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { SqliteDriver } from '../adapters/sqlite/driver.js';
import { wakeupsFor } from '../adapters/sqlite/wakeups.js';
import { rejects, sleep, uniq } from './helpers/index.js';

const quiet = pino({ level: 'silent' });
const dir = () => mkdtempSync(join(tmpdir(), 'agentbus-state-'));

interface Store {
  db: Database.Database;
  /** A bus on the same database: publishes and dead letters as users make them. */
  bus: Bus;
  driver: SqliteDriver;
  path: string;
  close(): Promise<void>;
}

/** A bus and a driver sharing one database connection (`:memory:` is private to its connection). */
async function open(path: string, opts: { readonly?: boolean } = {}): Promise<Store> {
  const memory = path === ':memory:';
  const db = opts.readonly ? new Database(path, { readonly: true, fileMustExist: true }) : new Database(path);
  const bus = await createSqliteBus({ database: db, logger: quiet, ...(opts.readonly ? { readonly: true } : {}) });
  const driver = new SqliteDriver(db, wakeupsFor(memory ? null : resolve(path)), 25, 5000, false, opts.readonly ?? false);
  return {
    db,
    bus,
    driver,
    path,
    async close() {
      await driver.close();
      await bus.close();
      db.close();
    },
  };
}

const KINDS = [
  { name: 'file', path: () => join(dir(), 'bus.db') },
  { name: ':memory:', path: () => ':memory:' },
];

/** Reads everything `consumer` can take now on `topics`. */
function read(st: Store, group: string, consumer: string, topics: string[], opts: { max?: number; leaseMs?: number; maxBytes?: number; ack?: Delivery[] } = {}) {
  return st.driver.reads.read({
    ack: opts.ack ?? [],
    group,
    consumer,
    topics,
    max: opts.max ?? 100,
    leaseMs: opts.leaseMs ?? 60_000,
    blockMs: 0,
    signal: new AbortController().signal,
    maxBytes: opts.maxBytes ?? 1024 * 1024,
  });
}

const pendingRows = (st: Store, group: string) =>
  st.db.prepare('SELECT p.seq, p.consumer, p.attempts FROM pending p JOIN groups g ON g.gid = p.gid WHERE g.grp = ? ORDER BY p.seq').all(group) as Array<{ seq: number; consumer: string | null; attempts: number }>;

const write = (key: string, expectVersion: number, state: unknown, ack: Delivery[] = [], more: Partial<StateWrite> = {}): StateWrite => ({
  key,
  expectVersion,
  state: state === null ? null : JSON.stringify(state),
  applied: {},
  ttlMs: 0,
  ack,
  ...more,
});

for (const kind of KINDS) {
  test(`${kind.name}: own() acquires a free group with epoch 1, renews for its holder, refuses others while the lease runs, and grows the epoch on every change of hands`, async () => {
    const st = await open(kind.path());
    const s = st.driver.state;
    const g = uniq('g');
    assert.equal(await s.own(g, 'a', 60_000), { epoch: 1, acquired: true });
    assert.equal(await s.own(g, 'a', 60_000), { epoch: 1, acquired: false }, 'renewed');
    assert.is(await s.own(g, 'b', 60_000), null, 'held by a');

    await s.disown(g, 'a', 2); // not a's epoch
    await s.disown(g, 'b', 1); // not b's group
    assert.is(await s.own(g, 'b', 60_000), null, 'a wrong disown gave nothing up');
    await s.disown(g, 'a', 1);
    assert.equal(await s.own(g, 'b', 50), { epoch: 2, acquired: true }, 'free at once after disown');

    await sleep(80); // b's lease runs out
    assert.equal(await s.own(g, 'a', 60_000), { epoch: 3, acquired: true }, 'expired: taken with the next epoch');
    await s.disown(g, 'a', 3);
    assert.equal(await s.own(g, 'a', 50), { epoch: 4, acquired: true }, 'the epoch survives a group given up');
    await sleep(80);
    assert.equal(await s.own(g, 'a', 60_000), { epoch: 5, acquired: true }, "a holder's own expired lease is taken again, never renewed");
    const other = uniq('g');
    assert.equal(await s.own(other, 'a', 60_000), { epoch: 1, acquired: true }, 'epochs are per group');
    await st.close();
  });

  test(`${kind.name}: takeOver() claims every pending delivery of the group on its topics (every consumer's, released, retried dead letters), attempts +1, by topic and position, decoded as read() decodes them; the caller then holds them`, async () => {
    const st = await open(kind.path());
    const { driver: d } = st;
    const g = uniq('g');
    const [t1, t2, t3] = [uniq('t1'), uniq('t2'), uniq('t3')];
    await d.groups.create(g, [t1, t2, t3], 'earliest');
    const ids1 = await st.bus.publishBatch([1, 2, 3, 4].map((n) => ({ type: t1, data: { n } })));
    const ids2 = await st.bus.publishBatch([1, 2].map((n) => ({ type: t2, data: { n, pad: 'x'.repeat(2000) } })));
    await st.bus.publish(t3, { other: true });

    const byA = await read(st, g, 'a', [t1], { max: 3 }); // t1 #1-#3 held by a
    const byB = await read(st, g, 'b', [t2, t3]); // t2 #1-#2 and t3 held by b
    assert.is(byA.length + byB.length, 6);
    await d.leases.release(g, 'a', [byA[1]]); // t1 #2 released (attempts kept at 1)
    await d.deadLetters.add(g, byA[2], 'failed', 'Error: boom'); // t1 #3 a dead letter...
    const [dl] = await st.bus.deadLetters.list({ group: g });
    assert.is(await st.bus.deadLetters.retry([dl.id]), 1); // ...retried: pending again, with its own body
    const t2first = byB.find((x) => x.topic === t2)!;
    assert.equal(t2first.position, String(Number(byA[0].position) + 4));
    await d.leases.countAttempt(g, t2first); // t2 #1 counted twice

    await rejects(() => d.state.takeOver(g, 'c', [t1, t2], 1024), 'OWNERSHIP_LOST', 'c', 'never been owned');
    assert.equal((await d.state.own(g, 'c', 60_000))?.acquired, true);
    const got = await d.state.takeOver(g, 'c', [t1, t2], 1024);
    assert.equal(
      got.map((x) => [x.topic, x.event?.id ?? x.position, x.attempts, x.oversize ?? false]),
      [
        [t1, ids1[0], 2, false],
        [t1, ids1[1], 2, false],
        [t1, ids1[2], 1, false], // a retried dead letter starts its attempts again
        [t2, t2first.position, 3, true], // over maxBytes: not decoded, as read() does
        [t2, String(Number(t2first.position) + 1), 2, true],
      ],
      't1 #4 was never read; t3 is not among the topics',
    );
    // Decoded exactly like read(): the same Delivery a read of the same rows makes.
    assert.equal(got[0], { ...byA[0], attempts: 2 });
    const again = await read(st, g, 'z', [t2], { maxBytes: 1024 }); // nothing: c holds them
    assert.equal(again, []);
    assert.equal(
      pendingRows(st, g).map((r) => r.consumer),
      ['c', 'c', 'c', 'c', 'c', 'b'],
      'held by c, t3 still b',
    );

    // Held by c: its own read does not take them again, release gives them back, ack removes them.
    assert.equal((await read(st, g, 'c', [t1, t2])).map((x) => x.event?.id), [ids1[3]], 'only the new event');
    await d.leases.renew(g, 'c', got, 60_000);
    await d.leases.release(g, 'c', [got[3]]);
    const back = await read(st, g, 'z', [t2], { maxBytes: 1024 * 1024 });
    assert.equal(back.map((x) => [x.event?.id, x.attempts, (x.event?.data as { n: number }).n]), [[ids2[0], 4, 1]], 'the released one, decoded in full with a larger maxBytes');
    await d.leases.ack(g, [got[0], got[1], got[2], got[4]]);
    assert.equal(pendingRows(st, g).length, 3, 't1 #4 (c), t2 #1 (z), t3 (b)');
    await st.close();
  });

  test(`${kind.name}: commit() writes versions, state, TTL and its acks in one transaction; a wrong version is a conflict with nothing of its own written or acked; load() returns the live records`, async () => {
    const st = await open(kind.path());
    const { driver: d } = st;
    const s = d.state;
    const g = uniq('g');
    const t = uniq('t');
    await d.groups.create(g, [t], 'earliest');
    await st.bus.publishBatch(Array.from({ length: 6 }, (_, n) => ({ type: t, data: { n } })));
    const ds = await read(st, g, 'a', [t]);
    const { epoch } = (await s.own(g, 'a', 60_000))!;
    const before = Date.now();
    const first = await s.commit(g, 'a', epoch, [write('k1', 0, { n: 1 }, [ds[0]]), write('k2', 0, { n: 2 }, [ds[1]], { applied: { [t]: '2' } })], [ds[2]]);
    assert.equal(first, { conflicts: [] });
    assert.equal(pendingRows(st, g).map((r) => r.seq), ds.slice(3).map((x) => Number(x.position)), 'the acks went with the writes');
    const loaded = await s.load(g, ['k1', 'k2', 'k3']);
    assert.equal([...loaded.keys()].sort(), ['k1', 'k2'], 'k3 has no record');
    assert.equal({ ...loaded.get('k1')!, updatedAt: 0 }, { version: 1, state: '{"n":1}', applied: {}, updatedAt: 0 });
    assert.ok(loaded.get('k2')!.updatedAt >= before);
    assert.equal(loaded.get('k2')!.applied, { [t]: '2' });

    // k1 at a stale version: a conflict, its state and its ack untouched; k2 applied (applied merged, never backwards).
    const second = await s.commit(g, 'a', epoch, [write('k1', 0, { n: 'lost' }, [ds[3]]), write('k2', 1, { n: 22 }, [ds[4]], { applied: { [t]: '1', other: '9' } })], []);
    assert.equal(second, { conflicts: ['k1'] });
    assert.equal((await s.get(g, 'k1'))!.state, '{"n":1}');
    assert.equal(await s.get(g, 'k2'), { ...(await s.get(g, 'k2'))!, version: 2, state: '{"n":22}', applied: { [t]: '2', other: '9' } });
    assert.equal(pendingRows(st, g).map((r) => r.seq), [Number(ds[3].position), Number(ds[5].position)], "the conflicting write's ack was skipped");

    // A null state deletes the record; the next version check treats the key as new.
    assert.equal(await s.commit(g, 'a', epoch, [write('k2', 2, null, [ds[3]])], []), { conflicts: [] });
    assert.is(await s.get(g, 'k2'), null);
    assert.equal(await s.commit(g, 'a', epoch, [write('k2', 2, { n: 'stale' })], []), { conflicts: ['k2'] });
    assert.equal(await s.commit(g, 'a', epoch, [write('k2', 0, { n: 'new' })], []), { conflicts: [] });
    assert.is((await s.get(g, 'k2'))!.version, 1);

    // The epoch is checked first: a stale owner writes and acknowledges nothing, not even what has no conflict.
    assert.equal((await s.own(g, 'b', 60_000)), null);
    await s.disown(g, 'a', epoch);
    assert.equal((await s.own(g, 'b', 60_000))?.epoch, epoch + 1);
    await rejects(() => s.commit(g, 'a', epoch, [write('k3', 0, { n: 3 }, [ds[5]])], [ds[3]]), 'OWNERSHIP_LOST', 'nothing written', `epoch ${epoch}`, `owned by b under epoch ${epoch + 1}`);
    await rejects(() => s.commit(g, 'b', epoch, [], [ds[3]]), 'OWNERSHIP_LOST');
    assert.is(await s.get(g, 'k3'), null);
    assert.equal(pendingRows(st, g).length, 1, 'nothing acknowledged');
    assert.equal(await s.commit(g, 'b', epoch + 1, [], [ds[5]]), { conflicts: [] }, 'acks outside any write');
    assert.equal(pendingRows(st, g), []);
    await st.close();
  });

  test(`${kind.name}: a record with a TTL is invisible once it expires (load, get, list, version check) and trim deletes it; ttlMs 0 keeps it`, async () => {
    const st = await open(kind.path());
    const s = st.driver.state;
    const g = uniq('g');
    const { epoch } = (await s.own(g, 'a', 60_000))!;
    await s.commit(g, 'a', epoch, [write('short', 0, 1, [], { ttlMs: 40 }), write('kept', 0, 2, [], { ttlMs: 60_000 })], []);
    await s.commit(g, 'a', epoch, [write('kept', 1, 3, [], { ttlMs: 0 })], []);
    const expiry = st.db.prepare('SELECT expires_at FROM agent_state WHERE grp = ? AND key = ?');
    assert.is((expiry.get(g, 'kept') as { expires_at: number | null }).expires_at, null, 'ttlMs 0: kept until removed');
    assert.ok((expiry.get(g, 'short') as { expires_at: number }).expires_at > 0);
    await sleep(80);
    assert.equal([...(await s.load(g, ['short', 'kept'])).keys()], ['kept']);
    assert.is(await s.get(g, 'short'), null);
    assert.equal((await s.list(g, { limit: 10 })).map((r) => r.key), ['kept']);
    const rows = () => (st.db.prepare('SELECT key FROM agent_state WHERE grp = ? ORDER BY key').all(g) as { key: string }[]).map((r) => r.key);
    assert.equal(rows(), ['kept', 'short'], 'still stored until housekeeping');
    assert.is(await s.remove(g, ['nothing']), 0);
    // An expired record counts as no record: a writer that saw none (version 0) writes version 1.
    assert.equal(await s.commit(g, 'a', epoch, [write('short', 1, 'stale')], []), { conflicts: ['short'] });
    await st.driver.admin.housekeep(); // the bus' housekeeping pass
    assert.equal(rows(), ['kept']);
    assert.equal(await s.commit(g, 'a', epoch, [write('short', 0, 'again')], []), { conflicts: [] });
    assert.is((await s.get(g, 'short'))!.version, 1);
    await st.close();
  });

  test(`${kind.name}: wait records: openWait keeps the first deadline, matchWait records the first match only, removeWaits deletes, housekeeping deletes expired ones`, async () => {
    const st = await open(kind.path());
    const s = st.driver.state;
    const g = uniq('g');
    const first = await s.openWait(g, 'w1', { type: 'a.granted', key: 'k', deadline: 1000 }, 60_000);
    assert.equal(first, { type: 'a.granted', key: 'k', deadline: 1000, matched: null });
    assert.equal(await s.openWait(g, 'w1', { type: 'a.granted', key: 'k', deadline: 5000 }, 60_000), first, 'a re-run keeps the first deadline');
    assert.is(await s.matchWait(g, 'w1', '{"id":"m1"}'), '{"id":"m1"}');
    assert.is(await s.matchWait(g, 'w1', '{"id":"m2"}'), '{"id":"m1"}', 'the first match stays');
    assert.is((await s.openWait(g, 'w1', { type: 'a.granted', key: 'k', deadline: 5000 }, 60_000)).matched, '{"id":"m1"}');
    assert.is(await s.matchWait(g, 'none', '{}'), null, 'no record: nothing recorded');
    const future = Date.now() + 60_000;
    await s.openWait(g, 'w2', { type: 'a.granted', key: 'k', deadline: future }, 60_000);
    await s.openWait(g, 'w3', { type: 'a.granted', key: 'k', deadline: future }, 60_000);
    assert.is(await s.removeWaits(g, ['w2', 'none']), 1, 'how many existed');
    const ids = () => (st.db.prepare('SELECT id FROM agent_wait WHERE grp = ? ORDER BY id').all(g) as { id: string }[]).map((r) => r.id);
    assert.equal(ids(), ['w1', 'w3']);
    await st.driver.admin.housekeep(); // w1 expired long ago (deadline 1000 + 60 s)
    assert.equal(ids(), ['w3']);
    await st.close();
  });

  test(`${kind.name}: get, list (key order, after, limit, sizes), remove (how many existed) and groups (with records or an owner now)`, async () => {
    const st = await open(kind.path());
    const s = st.driver.state;
    const [g1, g2, g3] = [uniq('g1'), uniq('g2'), uniq('g3')];
    const e1 = (await s.own(g1, 'a', 60_000))!.epoch;
    await s.commit(g1, 'a', e1, ['b', 'a', 'c', 'é'].map((k) => write(k, 0, { k })), []);
    assert.equal(await s.list(g1, { limit: 2 }).then((r) => r.map((x) => [x.key, x.version, x.bytes])), [['a', 1, 9], ['b', 1, 9]]);
    assert.equal((await s.list(g1, { after: 'b', limit: 10 })).map((x) => [x.key, x.bytes]), [['c', 9], ['é', 10]], 'bytes are UTF-8 bytes');
    assert.equal(await s.list(g2, { limit: 10 }), []);
    const e2 = (await s.own(g2, 'a', 60_000))!.epoch;
    assert.equal((await s.groups()).filter((x) => [g1, g2, g3].includes(x)), [g1, g2], 'g2: owned, no records');
    await s.disown(g2, 'a', e2);
    assert.equal((await s.groups()).filter((x) => [g1, g2, g3].includes(x)), [g1]);
    assert.is(await s.remove(g1, ['a', 'zz', 'c']), 2);
    assert.equal((await s.list(g1, { limit: 10 })).map((x) => x.key), ['b', 'é']);
    assert.is(await s.remove(g1, ['b', 'é']), 2);
    assert.equal((await s.groups()).filter((x) => [g1, g2, g3].includes(x)), [g1], 'no records, still owned');
    await s.disown(g1, 'a', e1);
    assert.equal((await s.groups()).filter((x) => [g1, g2, g3].includes(x)), []);
    assert.ok(s.comparePositions('9', '10') < 0 && s.comparePositions('10', '9') > 0 && s.comparePositions('12', '12') === 0 && s.comparePositions('120', '121') < 0);
    await st.close();
  });
}

test('file: remove() erases the state and the key\'s step and wait records from the file and its WAL, not only from queries', async () => {
  const st = await open(join(dir(), 'bus.db'));
  const s = st.driver.state;
  const g = uniq('g');
  const secret = uniq('SECRET-VALUE');
  const stepSecret = uniq('STEP-SECRET');
  const { epoch } = (await s.own(g, 'a', 60_000))!;
  for (let v = 0; v < 5; v++) await s.commit(g, 'a', epoch, [write('person', v, { secret, v }), write(`other-${v}`, 0, { v })], []);
  const far = Date.now() + 86_400_000;
  await s.openWait(g, 's1', { type: 'step summarise', key: 'person', deadline: far }, 60_000);
  await s.matchWait(g, 's1', JSON.stringify({ v: stepSecret }));
  await s.openWait(g, 'w1', { type: 'a.granted', key: 'person', deadline: far }, 60_000);
  await s.openWait(g, 'w2', { type: 'a.granted', key: 'other-0', deadline: far }, 60_000);
  await s.openWait(g, 'w3', { type: 'a.granted', key: 'records-only', deadline: far }, 60_000);
  const bytes = () => Buffer.concat([readFileSync(st.path), readFileSync(`${st.path}-wal`, { flag: 'a+' })]);
  assert.ok(bytes().includes(secret) && bytes().includes(stepSecret), 'the test looks for the right bytes');
  assert.is(await s.remove(g, ['person', 'records-only', 'nobody']), 2, 'a key with records only counts');
  assert.not.ok(bytes().includes(secret), 'the secret is still in the file or its WAL');
  assert.not.ok(bytes().includes(stepSecret), 'the step\'s recorded result is still in the file or its WAL');
  assert.equal((await s.list(g, { limit: 10 })).length, 5, 'the other records are kept');
  const ids = (st.db.prepare('SELECT id FROM agent_wait WHERE grp = ? ORDER BY id').all(g) as { id: string }[]).map((r) => r.id);
  assert.equal(ids, ['w2'], 'another key\'s wait record is kept');
  await st.close();
});

test('file: two connections race for one group: exactly one owns it at a time, and the epoch fences the other', async () => {
  const path = join(dir(), 'bus.db');
  const a = await open(path);
  const b = await open(path);
  const g = uniq('g');
  const owners = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).driver.state.own(g, `c${i}`, 60_000)));
  const won = owners.filter((o) => o !== null);
  assert.equal(won, [{ epoch: 1, acquired: true }]);
  const winner = `c${owners.findIndex((o) => o !== null)}`;
  const loser = winner === 'c0' ? 'c1' : 'c0';
  await rejects(() => b.driver.state.commit(g, loser, 1, [write('k', 0, 1)], []), 'OWNERSHIP_LOST', `owned by ${winner} under epoch 1`);
  assert.equal(await a.driver.state.commit(g, winner, 1, [write('k', 0, 1)], []), { conflicts: [] });
  assert.is((await b.driver.state.get(g, 'k'))!.version, 1, 'the other connection reads it');
  await a.close();
  await b.close();
});

test('a read-only file: inspection works, every write is refused naming readonly', async () => {
  const path = join(dir(), 'bus.db');
  const w = await open(path);
  const g = uniq('g');
  const { epoch } = (await w.driver.state.own(g, 'a', 60_000))!;
  await w.driver.state.commit(g, 'a', epoch, [write('k', 0, { n: 1 })], []);
  const r = await open(path, { readonly: true });
  const s = r.driver.state;
  assert.is((await s.get(g, 'k'))!.state, '{"n":1}');
  assert.equal([...(await s.load(g, ['k'])).keys()], ['k']);
  assert.equal((await s.list(g, { limit: 5 })).map((x) => x.key), ['k']);
  assert.ok((await s.groups()).includes(g));
  await rejects(() => s.own(g, 'b', 1000), 'INVALID_OPTION', 'readonly');
  await rejects(() => s.disown(g, 'a', epoch), 'INVALID_OPTION', 'readonly');
  await rejects(() => s.commit(g, 'a', epoch, [write('k', 1, 2)], []), 'INVALID_OPTION', 'readonly');
  await rejects(() => s.remove(g, ['k']), 'INVALID_OPTION', 'readonly');
  await rejects(() => s.takeOver(g, 'a', ['t'], 1000), 'INVALID_OPTION', 'readonly');
  assert.is((await w.driver.state.get(g, 'k'))!.version, 1);
  await r.close();
  await w.close();
});

/** A file as agentbus left it at schema version 2 (test/fixtures/sqlite-schema-v2.sql), with one event and a group. */
function versionTwoFile(type: string, group: string): string {
  const path = join(dir(), 'v2.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(readFileSync('test/fixtures/sqlite-schema-v2.sql', 'utf8'));
  db.pragma('user_version = 2');
  const body = JSON.stringify({ specversion: '1.0', id: 'v2-1', type, source: '/old', time: new Date().toISOString(), data: { n: 1 } });
  db.prepare('INSERT INTO events (seq, topic, stored, body) VALUES (1, ?, ?, ?)').run(type, Date.now(), body);
  db.prepare('INSERT INTO topics (name) VALUES (?)').run(type);
  db.prepare('INSERT INTO groups (grp, start) VALUES (?, 0)').run(group);
  db.prepare('INSERT INTO cursors (grp, topic, seq) VALUES (?, ?, 0)').run(group, type);
  db.close();
  return path;
}

test('a version-2 file: read-only, it has no state and is left as it is; opened for writing, it migrates to 6 and keeps its events', async () => {
  const type = uniq('t');
  const group = uniq('g');
  const path = versionTwoFile(type, group);
  const info = () => {
    const db = new Database(path, { readonly: true });
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('agent_state', 'group_owner') ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    const v = [db.pragma('user_version', { simple: true }), tables];
    db.close();
    return v;
  };

  const r = await open(path, { readonly: true });
  assert.equal([await r.driver.state.get(group, 'k'), await r.driver.state.list(group, { limit: 5 }), await r.driver.state.groups()], [null, [], []]);
  assert.equal((await r.driver.state.load(group, ['k'])).size, 0);
  assert.is((await r.bus.stats()).find((t) => t.type === type)?.length, 1);
  await r.close();
  assert.equal(info(), [2, []], 'read-only changed nothing');

  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }));
  const bus = await createSqliteBus({ path, logger });
  assert.equal(info(), [6, ['agent_state', 'group_owner']]);
  assert.ok(lines.some((l) => l.from === 2 && l.to === 6 && String(l.msg).includes('migrated from version 2 to 6')), JSON.stringify(lines));
  await bus.close();
  const w = await open(path);
  const { epoch } = (await w.driver.state.own(group, 'a', 60_000))!;
  const [d] = await read(w, group, 'a', [type]);
  assert.is(d.event?.id, 'v2-1', 'the old event is still delivered');
  assert.equal(await w.driver.state.commit(group, 'a', epoch, [write('k', 0, { n: 1 }, [d])], []), { conflicts: [] });
  assert.equal(pendingRows(w, group), []);
  await w.close();
});

test('AGENTBUS_TEST_KILL_AFTER_STATE_WRITE: the process dies right after the commit, with the state and its acknowledgement both stored', async () => {
  const path = join(dir(), 'bus.db');
  const st = await open(path);
  const g = uniq('g');
  const t = uniq('t');
  await st.driver.groups.create(g, [t], 'earliest');
  await st.bus.publishBatch([1, 2].map((n) => ({ type: t, data: { n } })));
  const script = join(dir(), 'kill.mts');
  const root = process.cwd();
  writeFileSync(
    script,
    `import Database from '${root}/node_modules/better-sqlite3/lib/index.js';
     import { SqliteDriver } from '${root}/adapters/sqlite/driver.ts';
     import { openSchema } from '${root}/adapters/sqlite/schema.ts';
     import { wakeupsFor } from '${root}/adapters/sqlite/wakeups.ts';
     const db = new Database(${JSON.stringify(path)});
     openSchema(db);
     const d = new SqliteDriver(db, wakeupsFor(${JSON.stringify(path)}), 25, 5000, true);
     const ds = await d.reads.read({ ack: [], group: ${JSON.stringify(g)}, consumer: 'k', topics: [${JSON.stringify(t)}], max: 10, leaseMs: 60000, blockMs: 0, signal: new AbortController().signal, maxBytes: 1e6 });
     const { epoch } = await d.state.own(${JSON.stringify(g)}, 'k', 60000);
     for (const [i, x] of ds.entries()) {
       await d.state.commit(${JSON.stringify(g)}, 'k', epoch, [{ key: 'k' + i, expectVersion: 0, state: '1', applied: {}, ttlMs: 0, ack: [x] }], []);
       console.log('committed', i);
     }
     console.log('survived');`,
  );
  const run = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: root, env: { ...process.env, AGENTBUS_TEST_KILL_AFTER_STATE_WRITE: '2' }, encoding: 'utf8' });
  assert.is(run.signal, 'SIGKILL', run.stderr);
  assert.equal(run.stdout.trim().split('\n'), ['committed 0'], 'killed right after the second commit');
  assert.equal([...(await st.driver.state.load(g, ['k0', 'k1'])).keys()].sort(), ['k0', 'k1'], 'both states stored');
  assert.equal(pendingRows(st, g), [], 'both acknowledged with them');
  await st.close();
});

test.run();
