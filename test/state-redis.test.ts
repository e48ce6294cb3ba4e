// The Redis StateStore of keyed subscriptions (adapters/redis/state.ts), against a real redis-server
// and a real three-master Redis Cluster this file starts: ownership and epochs, load, commit with
// its version and epoch checks and acknowledgements, takeOver, inspection, and the crash hook.
// With STATE_REDIS_CHILD set, this file is instead the child process of the crash test (see there).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RedisDriver } from '../adapters/redis/driver.js';
import { Keys } from '../adapters/redis/keys.js';
import { defineAllScripts } from '../adapters/redis/scripts/index.js';
import type { Delivery } from '../bus/driver.js';
import { OwnershipLostError } from '../bus/errors.js';
import type { StateWrite } from '../bus/state.js';
import { rejects, uniq, waitFor } from './helpers/index.js';
import { hasRedisServer, startRedisCluster, startRedisServer } from './helpers/redis.js';

const quiet = pino({ level: 'silent' });
const MAX_BYTES = 1 << 20;

/** Where a test's store is: one server's URL, or cluster seed nodes. */
type Target = { url: string } | { nodes: { host: string; port: number }[] };

function connect(t: Target): Redis | Cluster {
  return 'url' in t ? new Redis(t.url) : new Cluster(t.nodes);
}

function driverOn(client: Redis | Cluster, prefix = 'events:'): RedisDriver {
  defineAllScripts(client);
  return new RedisDriver(client, new Keys(prefix), quiet, false, () => ({}));
}

const write = (key: string, expectVersion: number, state: string | null, extra: Partial<StateWrite> = {}): StateWrite => ({ key, expectVersion, state, applied: {}, ttlMs: 0, ack: [], ...extra });

if (process.env.STATE_REDIS_CHILD) {
  // The crash test's child: commits one write carrying one acknowledgement with
  // AGENTBUS_TEST_KILL_AFTER_STATE_WRITE=1, so the store kills this process at its worst moment.
  const job = JSON.parse(process.env.STATE_REDIS_CHILD) as { target: Target; group: string; consumer: string; epoch: number; write: StateWrite };
  const client = connect(job.target);
  const driver = driverOn(client);
  await driver.state.commit(job.group, job.consumer, job.epoch, [job.write], []);
  process.stdout.write('survived\n');
  process.exit(0);
} else if (!hasRedisServer()) {
  if (process.env.AGENTBUS_REQUIRE_REDIS === '1') throw new Error('redis state store: no redis-server on PATH (AGENTBUS_REQUIRE_REDIS=1)');
  const t = suite('redis state store');
  t.skip('no redis-server on PATH', () => {});
  t.run();
  console.log('SKIPPED redis state store: no redis-server on PATH');
} else {
  // Both stores first, then both suites: uvu runs the suites registered in one tick as one run.
  const [server, cluster] = await Promise.all([startRedisServer(), startRedisCluster(3)]);
  stateSuite('redis', { url: server.url }, true);
  stateSuite('redis-cluster', { nodes: cluster.nodes }, false);
}

function stateSuite(name: string, target: Target, single: boolean): void {
  const test = suite(`state store: ${name}`);
  let client: Redis | Cluster;
  let driver: RedisDriver;
  const opened: RedisDriver[] = [];

  test.before(async () => {
    client = connect(target);
    driver = driverOn(client);
    await client.ping();
  });
  test.after(async () => {
    for (const d of [driver, ...opened]) await d.close();
    client.disconnect();
  });

  /** Publishes `n` events to a new topic, creates `group` on it, and has `consumer` read them (held, pending). */
  async function pending(group: string, consumer: string, n: number, topic = uniq('keyed.topic')): Promise<{ topic: string; held: Delivery[] }> {
    await driver.groups.create(group, [topic], 'earliest');
    const events = Array.from({ length: n }, (_, i) => ({ specversion: '1.0' as const, id: uniq('ev'), type: topic, source: 'test', time: new Date().toISOString(), data: { i } }));
    await driver.log.append(events.map((event) => ({ topic, event, body: driver.log.encode!(event, MAX_BYTES), dedup: false, dedupWindowMs: 0 })));
    const held = await read(group, consumer, topic);
    assert.is(held.length, n);
    return { topic, held };
  }
  function read(group: string, consumer: string, topic: string): Promise<Delivery[]> {
    return driver.reads.read({ ack: [], group, consumer, topics: [topic], max: 1000, leaseMs: 60_000, blockMs: 0, signal: new AbortController().signal, maxBytes: MAX_BYTES });
  }
  /** Pending entries of the group on a stream key: [id, consumer, delivery count]. */
  async function pendingOn(key: string, group: string): Promise<Array<[string, string, number]>> {
    const p = (await client.xpending(key, group, '-', '+', 1000)) as Array<[string, string, number, number]>;
    return p.map(([id, c, , count]) => [id, c, Number(count)]);
  }

  test('own(): a free group is acquired with the next epoch; its holder renews; others wait for expiry; epochs outlive the owner record', async () => {
    const s = driver.state;
    const group = uniq('own');
    assert.equal(await s.own(group, 'a', 60_000), { epoch: 1, acquired: true });
    assert.equal(await s.own(group, 'a', 200), { epoch: 1, acquired: false }, 'renewed, same epoch');
    assert.is(await s.own(group, 'b', 60_000), null, 'held by a under an unexpired lease');
    // a's renewal shortened the lease to 200 ms: once it runs out b takes the group, with the next epoch.
    let got: Awaited<ReturnType<typeof s.own>> = null;
    await waitFor('b acquires after the lease expired', async () => (got = await s.own(group, 'b', 200)) !== null);
    assert.equal(got, { epoch: 2, acquired: true });
    // The owner record expires; the epoch counter does not: the next owner gets 3, never 1 again.
    await waitFor('the owner record expired', async () => (await client.exists(driver['s'].keys.owner(group))) === 0);
    assert.equal(await s.own(group, 'a', 60_000), { epoch: 3, acquired: true });
    const keys = driver['s'].keys;
    assert.is(await client.pttl(keys.epoch(group)), -1, 'the epoch counter has no TTL');
    assert.ok((await client.pttl(keys.owner(group))) > 0, 'the owner record has the lease as TTL');
  });

  test('disown(): only the holder under its epoch gives the group up; then another consumer acquires at once', async () => {
    const s = driver.state;
    const group = uniq('disown');
    const { epoch } = (await s.own(group, 'a', 60_000))!;
    await s.disown(group, 'b', epoch);
    await s.disown(group, 'a', epoch + 1);
    assert.is(await s.own(group, 'b', 60_000), null, 'a still holds it');
    await s.disown(group, 'a', epoch);
    assert.equal(await s.own(group, 'b', 60_000), { epoch: epoch + 1, acquired: true });
  });

  test('commit() + load(): versions, state, applied positions merged and never moved back, updatedAt, TTL and persist, delete', async () => {
    const s = driver.state;
    const group = uniq('commit');
    const { epoch } = (await s.own(group, 'c', 60_000))!;
    const serverMs = async () => Number((await client.time())[0]) * 1000;
    const before = await serverMs();
    let r = await s.commit(group, 'c', epoch, [
      write('k1', 0, '{"n":1}', { applied: { 'events:x': '5-1', 'events:y': '18446744073709551615-9' } }),
      write('k2', 0, '{"n":2}', { ttlMs: 60_000 }),
      write('k3', 0, '"gone soon"', { ttlMs: 150 }),
    ], []);
    assert.equal(r, { conflicts: [] });
    let m = await s.load(group, ['k1', 'k2', 'k3', 'missing']);
    assert.ok(m.has('k1') && m.has('k2'));
    assert.equal(m.get('k1')!.version, 1);
    assert.equal(m.get('k1')!.state, '{"n":1}');
    assert.equal(m.get('k1')!.applied, { 'events:x': '5-1', 'events:y': '18446744073709551615-9' });
    assert.ok(m.get('k1')!.updatedAt >= before && m.get('k1')!.updatedAt <= (await serverMs()) + 1000, 'updatedAt is the server time of the commit');
    assert.is(m.has('missing'), false);
    const keys = driver['s'].keys;
    assert.is(await client.pttl(keys.state(group, 'k1')), -1, 'ttlMs 0: no TTL');
    assert.ok((await client.pttl(keys.state(group, 'k2'))) > 0, 'ttlMs > 0: a TTL');
    await waitFor('k3 expired: absent from load', async () => !(await s.load(group, ['k3'])).has('k3'));
    assert.is(await s.get(group, 'k3'), null);

    // Applied positions merge per stream and never go back; ttl 0 persists a record that had a TTL.
    r = await s.commit(group, 'c', epoch, [
      write('k1', 1, '{"n":11}', { applied: { 'events:x': '4-9', 'events:y': '18446744073709551615-10', 'events:z': '1-0' } }),
      write('k2', 1, '{"n":22}', { ttlMs: 0 }),
    ], []);
    assert.equal(r, { conflicts: [] });
    m = await s.load(group, ['k1', 'k2']);
    assert.equal(m.get('k1')!, { ...m.get('k1')!, version: 2, state: '{"n":11}', applied: { 'events:x': '5-1', 'events:y': '18446744073709551615-10', 'events:z': '1-0' } });
    assert.is(m.get('k2')!.version, 2);
    assert.is(await client.pttl(keys.state(group, 'k2')), -1, 'ttlMs 0 removed the TTL');

    // state null deletes the record.
    assert.equal(await s.commit(group, 'c', epoch, [write('k2', 2, null)], []), { conflicts: [] });
    assert.is(await client.exists(keys.state(group, 'k2')), 0);
    assert.equal([...(await s.load(group, ['k1', 'k2'])).keys()], ['k1']);
  });

  test('commit(): a version mismatch skips that key, its write and its acknowledgements; the others are applied and acknowledged', async () => {
    const s = driver.state;
    const group = uniq('conflict');
    const { epoch } = (await s.own(group, 'c', 60_000))!;
    await s.commit(group, 'c', epoch, [write('a', 0, '1'), write('b', 0, '1')], []);
    const { held } = await pending(group, 'c', 4);
    const [d1, d2, d3, d4] = held;
    const r = await s.commit(group, 'c', epoch, [
      write('a', 0, '"stale"', { ack: [d1] }), // stored version is 1
      write('b', 1, '2', { ack: [d2] }),
      write('new', 1, '"x"', { ack: [d3] }), // no record: version 0
    ], [d4]);
    assert.equal(r.conflicts.sort(), ['a', 'new']);
    const m = await s.load(group, ['a', 'b', 'new']);
    assert.equal([m.get('a')!.version, m.get('a')!.state], [1, '1']);
    assert.equal([m.get('b')!.version, m.get('b')!.state], [2, '2']);
    assert.is(m.has('new'), false);
    const left = (await pendingOn(d1.ref!, group)).map(([id]) => id);
    assert.equal(left, [d1.position, d3.position], 'only the conflicting writes\' deliveries stay pending');
  });

  test('commit(): writes with several acknowledgements over two streams, one with none, acknowledgements outside any write on both, a delete and JSON with newlines, in one call', async () => {
    const s = driver.state;
    const group = uniq('shapes');
    const { epoch } = (await s.own(group, 'c', 60_000))!;
    await s.commit(group, 'c', epoch, [write('gone', 0, '1'), write('kept', 0, '1', { ttlMs: 60_000 })], []);
    const a = await pending(group, 'c', 4);
    const b = await pending(group, 'c', 3);
    const r = await s.commit(group, 'c', epoch, [
      write('multi', 0, '{"n":\n 2, "s": "a\\nb"}', { ack: [a.held[0], b.held[0], a.held[1]] }),
      write('none', 0, '"x"'),
      write('gone', 1, null, { ack: [b.held[1]] }),
      write('kept', 1, '2', { noExpiry: true }), // the writer's word: no PERSIST sent
    ], [a.held[2], b.held[2], a.held[3]]);
    assert.equal(r, { conflicts: [] });
    const m = await s.load(group, ['multi', 'none', 'gone', 'kept']);
    assert.equal(JSON.parse(m.get('multi')!.state), { n: 2, s: 'a\nb' });
    assert.is(m.get('none')!.state, '"x"');
    assert.is(m.has('gone'), false);
    assert.equal([m.get('kept')!.version, m.get('kept')!.state], [2, '2']);
    assert.ok((await client.pttl(driver['s'].keys.state(group, 'kept'))) > 0, 'noExpiry: the TTL was left as it was');
    for (const { held } of [a, b]) assert.is((await pendingOn(held[0].ref!, group)).length, 0, `every delivery on ${held[0].ref} acknowledged`);
  });

  test(`commit(): under a stale epoch it rejects with OwnershipLostError and writes and acknowledges nothing (atomicAck ${single})`, async () => {
    const s = driver.state;
    assert.is(s.atomicAck, single);
    const group = uniq('fenced');
    const old = (await s.own(group, 'a', 60_000))!;
    const { held } = await pending(group, 'a', 2);
    await s.disown(group, 'a', old.epoch);
    await s.own(group, 'b', 60_000);
    const err = await rejects(() => s.commit(group, 'a', old.epoch, [write('k', 0, '1', { ack: [held[0]] })], [held[1]]), 'OWNERSHIP_LOST', group);
    assert.instance(err, OwnershipLostError);
    assert.is(await s.get(group, 'k'), null);
    assert.is((await pendingOn(held[0].ref!, group)).length, 2, 'nothing acknowledged');
    // And a commit after the owner record expired is refused too.
    const gone = uniq('expired');
    const e = (await s.own(gone, 'a', 100))!;
    await waitFor('lease over', async () => (await client.exists(driver['s'].keys.owner(gone))) === 0);
    await rejects(() => s.commit(gone, 'a', e.epoch, [write('k', 0, '1')], []), 'OWNERSHIP_LOST');
    assert.is(await s.get(gone, 'k'), null);
  });

  test('takeOver(): every pending delivery of the group on the topics, a retried dead letter\'s included, in order, attempts + 1, then held by the caller', async () => {
    const s = driver.state;
    const group = uniq('takeover');
    const { topic, held } = await pending(group, 'old', 5);
    // One delivery becomes a dead letter, is retried (through the group's retry stream) and read again by `old`.
    await driver.deadLetters.add(group, held[4], 'test', 'failed');
    const [dl] = await driver.deadLetters.list({ group, limit: 10 });
    assert.is(await driver.deadLetters.retry([dl.id]), 1);
    const retried = await read(group, 'old', topic);
    assert.is(retried.length, 1);
    // A second consumer holds one as well; a release gives one back with its attempts stored.
    await driver.leases.release(group, 'old', [{ ...held[3], attempts: 2 }]);
    const again = await read(group, 'other', topic);
    assert.equal(again.map((d) => d.position), [held[3].position]);

    const taken = await s.takeOver(group, 'new', [topic], MAX_BYTES);
    assert.equal(taken.map((d) => d.position), [...held.slice(0, 4).map((d) => d.position), retried[0].position], 'stream order, then the retry stream');
    assert.equal(taken.map((d) => d.event!.id), [...held.slice(0, 4).map((d) => d.event!.id), held[4].event!.id]);
    assert.equal(taken.map((d) => d.attempts), [2, 2, 2, 4, 2]);
    assert.equal(taken.map((d) => d.event!.data), [0, 1, 2, 3, 4].map((i) => ({ i })), 'decoded as read() decodes');
    for (const key of [held[0].ref!, retried[0].ref!]) {
      for (const [, consumer] of await pendingOn(key, group)) assert.is(consumer, 'new');
    }
    assert.equal(await s.takeOver(group, 'new', [uniq('never.subscribed')], MAX_BYTES), [], 'a topic the group never met: nothing');

    // Held by the caller: renew/release only work for it, and a commit acknowledges them.
    const mine = await s.takeOver(group, 'new', [topic], MAX_BYTES);
    assert.is(mine.length, 5);
    const { epoch } = (await s.own(group, 'new', 60_000))!;
    await s.commit(group, 'new', epoch, [write('k', 0, '5', { ack: mine, applied: { [mine[0].ref!]: mine[3].position } })], []);
    assert.is((await pendingOn(held[0].ref!, group)).length, 0);
    assert.is((await pendingOn(retried[0].ref!, group)).length, 0);
  });

  test('get / list / remove / groups: key order, after, limit, sizes; remove erases; groups with records or an owner', async () => {
    const s = driver.state;
    const group = uniq('inspect');
    const { epoch } = (await s.own(group, 'c', 60_000))!;
    const names = ['b', 'a', 'é', 'a*', 'a[1]', 'z{x}', 'c?', 'a\\b'];
    await s.commit(group, 'c', epoch, names.map((k, i) => write(k, 0, JSON.stringify('x'.repeat(i)))), []);
    const sorted = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    const all = await s.list(group, { limit: 100 });
    assert.equal(all.map((r) => r.key), sorted);
    assert.equal(all.find((r) => r.key === 'é'), { key: 'é', version: 1, bytes: 2 + names.indexOf('é'), updatedAt: all.find((r) => r.key === 'é')!.updatedAt });
    assert.equal((await s.list(group, { after: 'a*', limit: 3 })).map((r) => r.key), sorted.slice(sorted.indexOf('a*') + 1, sorted.indexOf('a*') + 4));
    assert.equal(await s.get(group, 'a*'), (await s.load(group, ['a*'])).get('a*')!);
    assert.is(await s.remove(group, ['a', 'a*', 'nope']), 2);
    assert.is(await client.exists(driver['s'].keys.state(group, 'a'), driver['s'].keys.state(group, 'a*')), 0, 'gone from the store');
    assert.equal((await s.list(group, { limit: 100 })).map((r) => r.key), sorted.filter((k) => k !== 'a' && k !== 'a*'));

    const ownerOnly = uniq('owner-only');
    await s.own(ownerOnly, 'c', 60_000);
    const gs = await s.groups();
    assert.ok(gs.includes(group) && gs.includes(ownerOnly), gs.join(','));
  });

  test('list(): a prefix with glob characters matches only its own keys (SCAN MATCH escaped)', async () => {
    const globbed = driverOn(client, 'p*[?]:');
    const plain = driverOn(client, 'pX[?]:');
    opened.push(globbed, plain);
    const group = uniq('glob');
    for (const [d, key] of [[globbed, 'mine'], [plain, 'theirs']] as const) {
      const { epoch } = (await d.state.own(group, 'c', 60_000))!;
      await d.state.commit(group, 'c', epoch, [write(key, 0, '1')], []);
    }
    assert.equal((await globbed.state.list(group, { limit: 10 })).map((r) => r.key), ['mine']);
    assert.equal((await plain.state.list(group, { limit: 10 })).map((r) => r.key), ['theirs']);
    assert.ok((await globbed.state.groups()).includes(group));
    assert.ok(!(await driverOn(client, 'pY:').state.groups()).includes(group));
  });

  test('wait records: openWait keeps the first deadline and expires past it, matchWait records the first match only, removeWaits deletes; in the group\'s slot', async () => {
    const s = driver.state;
    const g = uniq('g');
    const deadline = Date.now() + 60_000;
    const first = await s.openWait(g, 'w1', { type: 'a.granted', key: 'k', deadline }, 30_000);
    assert.equal(first, { type: 'a.granted', key: 'k', deadline, matched: null });
    assert.equal(await s.openWait(g, 'w1', { type: 'a.granted', key: 'k', deadline: deadline + 5000 }, 30_000), first, 'a re-run keeps the first deadline');
    const key = new Keys('events:').wait(g, 'w1');
    const ttl = await client.pttl(key);
    assert.ok(ttl > 80_000 && ttl <= 90_000, `expires 30 s after its deadline: pttl ${ttl}`);
    assert.is(await s.matchWait(g, 'w1', '{"id":"m1"}'), '{"id":"m1"}');
    assert.is(await s.matchWait(g, 'w1', '{"id":"m2"}'), '{"id":"m1"}', 'the first match stays');
    assert.is((await s.openWait(g, 'w1', { type: 'a.granted', key: 'k', deadline }, 30_000)).matched, '{"id":"m1"}');
    assert.is(await s.matchWait(g, 'none', '{}'), null, 'no record: nothing recorded');
    await s.openWait(g, 'w2', { type: 'a.granted', key: 'k', deadline }, 30_000);
    assert.is(await s.removeWaits(g, ['w1', 'w2', 'none']), 2, 'how many existed');
    assert.is(await client.exists(key, new Keys('events:').wait(g, 'w2')), 0);
    await s.openWait(g, 'gone', { type: 'a.granted', key: 'k', deadline: Date.now() - 1000 }, 500);
    assert.is(await client.exists(new Keys('events:').wait(g, 'gone')), 0, 'past deadline + ttl: expired at once');
  });

  test('remove() erases the keys\' wait and step records too (through their key\'s index, by their key field), counting a key with records only; other keys\' and groups\' records stay', async () => {
    const s = driver.state;
    const [g, other] = [uniq('erase'), uniq('erase-other')];
    const { epoch } = (await s.own(g, 'c', 60_000))!;
    await s.commit(g, 'c', epoch, [write('person', 0, '1'), write('kept', 0, '1')], []);
    const far = Date.now() + 86_400_000;
    const open = (grp: string, id: string, type: string, key: string) => s.openWait(grp, id, { type, key, deadline: far }, 60_000);
    await open(g, 's1', 'step summarise', 'person');
    await s.matchWait(g, 's1', '{"v":"personal"}');
    await open(g, 'w1', 'a.granted', 'person');
    await open(g, 'w2', 'a.granted', 'kept');
    await open(g, 'w3', 'a.granted', 'records-only');
    await open(other, 'w4', 'a.granted', 'person');
    const k = new Keys('events:');
    assert.is(await s.remove(g, ['person', 'records-only', 'nobody']), 2);
    assert.is(await client.exists(k.state(g, 'person'), k.wait(g, 's1'), k.wait(g, 'w1'), k.wait(g, 'w3')), 0, 'state, step and waits of the erased keys');
    assert.is(await client.exists(k.state(g, 'kept'), k.wait(g, 'w2')), 2, 'another key\'s');
    assert.is(await client.exists(k.wait(other, 'w4')), 1, 'another group\'s');
    assert.is(await s.remove(g, ['person']), 0);
  });

  test('the per-key index of wait records: it expires with its latest record, drops members past their expiry, loses a removed record; matchWait leaves it alone', async () => {
    const s = driver.state;
    const g = uniq('index');
    const k = new Keys('events:');
    const idx = k.waitIndex(g, 'k');
    const deadline = Date.now() + 60_000;
    await s.openWait(g, 'w1', { type: 'a.granted', key: 'k', deadline }, 30_000);
    const ttl = await client.pttl(idx);
    assert.ok(ttl > 80_000 && ttl <= 90_000, `the index expires with its record: pttl ${ttl}`);
    assert.is(Number(await client.zscore(idx, 'w1')), deadline + 30_000, 'scored by the record\'s expiry');
    await s.openWait(g, 'w2', { type: 'a.granted', key: 'k', deadline: deadline + 100_000 }, 30_000);
    assert.ok((await client.pttl(idx)) > 180_000, 'then with the later one');
    await s.matchWait(g, 'w1', '{"id":"m"}');
    assert.equal(await client.zrange(idx, '0', '-1'), ['w1', 'w2']);
    assert.is(await s.removeWaits(g, ['w1']), 1);
    assert.equal(await client.zrange(idx, '0', '-1'), ['w2'], 'a removed record leaves the index');
    await s.openWait(g, 'short', { type: 'a.granted', key: 'k', deadline: Date.now() }, 300);
    await waitFor('the short record expired', async () => (await client.exists(k.wait(g, 'short'))) === 0);
    assert.equal((await s.listWaits(g, { key: 'k', limit: 10, steps: false })).map((w) => w.id), ['w2'], 'an expired record is not listed');
    await s.openWait(g, 'w3', { type: 'a.granted', key: 'k', deadline }, 30_000);
    assert.equal(await client.zrange(idx, '0', '-1'), ['w3', 'w2'], 'the expired member dropped by the next open');
    assert.is(await s.removeWaits(g, ['w2', 'w3']), 2);
    assert.is(await client.exists(idx), 0, 'an emptied index is gone');
  });

  test('removing a key\'s latest-expiring record brings its index\'s expiry down to the remaining records; an index left with expired members only is deleted', async () => {
    const s = driver.state;
    const k = new Keys('events:');
    const g = uniq('tidy');
    const idx = k.waitIndex(g, 'k');
    const day = 86_400_000;
    await s.openWait(g, 'step', { type: 'step charge', key: 'k', deadline: Date.now() + 365 * day }, day);
    await s.openWait(g, 'w', { type: 'a.granted', key: 'k', deadline: Date.now() + 60_000 }, 30_000);
    await s.openWait(g, 'short', { type: 'a.granted', key: 'k', deadline: Date.now() }, 300);
    assert.ok((await client.pttl(idx)) > 300 * day, 'expires with the step');
    assert.is(await s.removeWaits(g, ['step']), 1);
    const ttl = await client.pttl(idx);
    assert.ok(ttl > 0 && ttl <= 90_000, `then with the wait, 90 s away: pttl ${ttl}`);
    await waitFor('the short record expired', async () => (await client.exists(k.wait(g, 'short'))) === 0);
    assert.is(await s.removeWaits(g, ['w']), 1);
    assert.is(await client.exists(idx), 0, 'left with an expired member only: deleted');
  });

  if (single) {
    test('a key\'s records are listed and erased through its index, without SCAN (2,000 unrelated keys); a group with records of an earlier version (no index), now owned by this version, is scanned once, then not', async () => {
      const s = driver.state;
      const k = new Keys('events:');
      const r = client as Redis;
      const scans = async () => Number(/cmdstat_scan:calls=(\d+)/.exec(await r.info('commandstats'))?.[1] ?? 0);
      const filler = uniq('unrelated');
      const p = r.pipeline();
      for (let i = 0; i < 2000; i++) p.set(`${filler}:${i}`, '1');
      await p.exec();
      const far = Date.now() + 3_600_000;
      const g = uniq('by-index');
      await s.own(g, 'c', 60_000);
      await s.openWait(g, 's1', { type: 'step llm', key: 'person', deadline: far }, 60_000);
      await s.matchWait(g, 's1', '{"v":1}');
      await s.openWait(g, 'w1', { type: 'a.granted', key: 'person', deadline: far }, 60_000);
      await s.openWait(g, 'w2', { type: 'a.granted', key: 'other', deadline: far }, 60_000);
      const before = await scans();
      assert.equal((await s.listWaits(g, { key: 'person', limit: 10, steps: false })).map((w) => w.id), ['w1']);
      assert.equal(await s.listWaits(g, { key: 'person', limit: 10, steps: true }), [{ id: 's1', key: 'person', type: 'step llm', deadline: far, matched: true, result: '{"v":1}' }]);
      assert.is(await s.remove(g, ['person', 'nobody']), 1);
      assert.equal(await s.listWaits(g, { key: 'person', limit: 10, steps: true }), []);
      assert.is((await scans()) - before, 0, 'no SCAN');
      assert.equal((await s.listWaits(g, { limit: 10, steps: false })).map((w) => w.id), ['w2'], 'the group-wide listing (a SCAN) sees the rest');

      // As an earlier version left them: records without an index, in a group it owned (an epoch) without the marker.
      const old = uniq('earlier');
      await r.set(k.epoch(old), '1');
      for (const [id, key] of [['o1', 'person'], ['o2', 'other']]) {
        await r.hset(k.wait(old, id), 'type', 'a.granted', 'key', key, 'deadline', String(far));
        await r.pexpireat(k.wait(old, id), far + 60_000);
      }
      await s.own(old, 'c', 60_000); // this version owns it now (epoch 2)
      const first = await scans();
      assert.equal((await s.listWaits(old, { key: 'person', limit: 10, steps: false })).map((w) => w.id), ['o1'], 'found by the one scan');
      assert.ok((await scans()) > first, 'the first call scanned');
      const second = await scans();
      assert.equal((await s.listWaits(old, { key: 'other', limit: 10, steps: false })).map((w) => w.id), ['o2']);
      assert.is(await s.remove(old, ['person']), 1);
      assert.is(await client.exists(k.wait(old, 'o1')), 0);
      assert.is((await scans()) - second, 0, 'later calls go by the index');
      await r.del(...Array.from({ length: 2000 }, (_, i) => `${filler}:${i}`));
    });

    test('rolling upgrade: records an earlier version\'s owner writes (no index) before, between and after this version\'s epochs are listed by key and erased; one scan per unbroken run of this version', async () => {
      const s = driver.state;
      const k = new Keys('events:');
      const r = client as Redis;
      const scans = async () => Number(/cmdstat_scan:calls=(\d+)/.exec(await r.info('commandstats'))?.[1] ?? 0);
      // The earlier version's ownGroup and openWait (before the per-key index), verbatim.
      const oldOwn = (g: string, consumer: string) =>
        r.eval(
          `local cur = redis.call('GET', KEYS[1])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  if sp and string.sub(cur, sp + 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {tonumber(string.sub(cur, 1, sp - 1)), 0}
  end
  return false
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {epoch, 1}`,
          2, k.owner(g), k.epoch(g), consumer, 60_000,
        ) as Promise<[number, number]>;
      const oldOpen = (g: string, id: string, type: string, key: string, deadline: number) =>
        r.eval(
          `if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'type', ARGV[1], 'key', ARGV[2], 'deadline', ARGV[3])
  redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]))
end
return redis.call('HMGET', KEYS[1], 'type', 'key', 'deadline', 'matched')`,
          1, k.wait(g, id), type, key, deadline, 86_400_000,
        );
      const yearAway = Date.now() + 365 * 86_400_000;
      const steps = async (g: string) => (await s.listWaits(g, { key: 'person', limit: 100, steps: true })).map((w) => w.id).sort();
      const leave = (g: string) => r.del(k.owner(g)); // the holder's lease ran out

      // This version took the group first (epoch 1), then an earlier version's process took it.
      const a = uniq('upgrade-a');
      assert.is((await s.own(a, 'new-1', 60_000))!.epoch, 1);
      await s.openWait(a, 'n1', { type: 'step charge', key: 'person', deadline: yearAway }, 86_400_000);
      await leave(a);
      assert.equal(await oldOwn(a, 'old-2'), [2, 1]);
      await oldOpen(a, 'o2', 'step charge', 'person', yearAway);
      assert.equal(await steps(a), ['n1', 'o2'], 'the earlier version\'s step is listed');
      assert.is(await s.remove(a, ['person']), 1);
      assert.is(await r.exists(k.wait(a, 'n1'), k.wait(a, 'o2')), 0, 'and erased');

      // An earlier version owns the group while this version's reader looks at it, twice.
      const b = uniq('upgrade-b');
      await oldOwn(b, 'old-1');
      await oldOpen(b, 'o1', 'step charge', 'person', yearAway);
      assert.equal(await steps(b), ['o1']);
      await oldOpen(b, 'o1b', 'step charge', 'person', yearAway);
      assert.equal(await steps(b), ['o1', 'o1b'], 'written after the first per-key call: still found');
      // This version takes over (epoch 2): one scan, then the index alone.
      await leave(b);
      assert.is((await s.own(b, 'new-2', 60_000))!.epoch, 2);
      await s.openWait(b, 'n2', { type: 'step charge', key: 'person', deadline: yearAway }, 86_400_000);
      assert.equal(await steps(b), ['n2', 'o1', 'o1b']);
      let before = await scans();
      assert.equal(await steps(b), ['n2', 'o1', 'o1b']);
      assert.is((await scans()) - before, 0, 'scanned once under this version\'s epoch');
      // Rolled back (epoch 3, earlier version), then upgraded again (epoch 4).
      await leave(b);
      await oldOwn(b, 'old-3');
      await oldOpen(b, 'o3', 'step charge', 'person', yearAway);
      assert.equal(await steps(b), ['n2', 'o1', 'o1b', 'o3'], 'under an earlier version\'s owner every per-key call scans');
      await leave(b);
      assert.is((await s.own(b, 'new-4', 60_000))!.epoch, 4);
      before = await scans();
      assert.is(await s.remove(b, ['person']), 1);
      assert.ok((await scans()) > before, 'the first call after the re-upgrade scans');
      assert.is(await r.exists(k.wait(b, 'n2'), k.wait(b, 'o1'), k.wait(b, 'o1b'), k.wait(b, 'o3')), 0, 'every record of the key erased');
      await s.openWait(b, 'n4', { type: 'step charge', key: 'person', deadline: yearAway }, 86_400_000);
      before = await scans();
      assert.equal(await steps(b), ['n4']);
      assert.is((await scans()) - before, 0, 'then the index alone');
    });

    test('a key with 1,200 step records is listed and erased in script calls of at most 500 records each (INFO commandstats)', async () => {
      const s = driver.state;
      const r = client as Redis;
      const stats = async () => {
        const info = await r.info('commandstats');
        const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
        return { scripts: calls('evalsha') + calls('eval'), hmget: calls('hmget'), hget: calls('hget') };
      };
      const g = uniq('many-steps');
      await s.own(g, 'c', 60_000);
      const far = Date.now() + 3_600_000;
      for (let i = 0; i < 1200; i += 100) {
        await Promise.all(Array.from({ length: 100 }, (_, j) => s.openWait(g, `s${i + j}`, { type: 'step llm', key: 'busy', deadline: far }, 60_000)));
      }
      let before = await stats();
      assert.is((await s.listWaits(g, { key: 'busy', limit: 10_000, steps: true })).length, 1200);
      let after = await stats();
      let calls = after.scripts - before.scripts;
      assert.ok(calls >= 3, `listing: ${calls} script calls`);
      assert.ok((after.hmget - before.hmget) / calls <= 500, `listing: ${after.hmget - before.hmget} records read in ${calls} script calls`);
      before = await stats();
      assert.is(await s.remove(g, ['busy']), 1);
      after = await stats();
      calls = after.scripts - before.scripts;
      assert.ok(calls >= 3, `erasing: ${calls} script calls`);
      assert.ok((after.hget - before.hget) / calls <= 500, `erasing: ${after.hget - before.hget} records read in ${calls} script calls`);
      assert.equal(await s.listWaits(g, { key: 'busy', limit: 10, steps: true }), []);
    });

    test('listing or erasing keys of groups nothing ever ran in (no epoch) answers empty and writes nothing (50 unknown group names)', async () => {
      const s = driver.state;
      const r = client as Redis;
      const before = await r.dbsize();
      for (let i = 0; i < 50; i++) {
        const g = uniq('nosuch');
        assert.is(await s.get(g, 'k'), null);
        assert.equal(await s.listWaits(g, { key: 'k', limit: 10, steps: false }), []);
        assert.equal(await s.listWaits(g, { key: 'k', limit: 10, steps: true }), []);
        assert.is(await s.remove(g, ['k']), 0);
      }
      assert.is(await r.dbsize(), before, 'no key written');
    });

    test('the group-wide listing of waits does not fetch the step results it does not show (bytes Redis sent, INFO stats)', async () => {
      const s = driver.state;
      const r = client as Redis;
      const sent = async () => Number(/total_net_output_bytes:(\d+)/.exec(await r.info('stats'))![1]);
      const g = uniq('no-results');
      const far = Date.now() + 3_600_000;
      for (let i = 0; i < 4; i++) {
        await s.openWait(g, `s${i}`, { type: 'step big', key: 'k', deadline: far }, 60_000);
        await s.matchWait(g, `s${i}`, JSON.stringify({ v: 'x'.repeat(100_000) }));
      }
      await s.openWait(g, 'w', { type: 'a.granted', key: 'k', deadline: far }, 60_000);
      const before = await sent();
      assert.equal((await s.listWaits(g, { limit: 10, steps: false })).map((w) => w.id), ['w']);
      const waits = (await sent()) - before;
      assert.ok(waits < 100_000, `listing waits sent ${waits} bytes: step results fetched`);
      const mid = await sent();
      assert.is((await s.listWaits(g, { limit: 10, steps: true })).length, 4);
      assert.ok((await sent()) - mid > 400_000, 'listing steps does fetch them');
    });
  }

  if (!single) {
    test('during a migration of the group\'s slot (the key indexes moved first), removeWaits and remove wait for it and leave no record nor index member (every key a script touches is declared)', async () => {
      const s = driver.state;
      const k = new Keys('events:');
      const g = uniq('migrating');
      await s.own(g, 'c', 60_000);
      const far = Date.now() + 3_600_000;
      for (const key of ['alice', 'bob']) await s.openWait(g, `id-${key}`, { type: 'a.granted', key, deadline: far }, 60_000);
      const nodes = (target as { nodes: { host: string; port: number }[] }).nodes;
      const direct = nodes.map((n) => new Redis(n.port, n.host));
      try {
        const slot = calculateSlot(k.stateTag(g));
        const ids = (await Promise.all(direct.map((d) => d.cluster('MYID')))) as string[];
        const counts = (await Promise.all(direct.map((d) => d.cluster('COUNTKEYSINSLOT', slot)))) as number[];
        const from = counts.findIndex((n) => n > 0);
        const to = (from + 1) % direct.length;
        await direct[to].cluster('SETSLOT', slot, 'IMPORTING', ids[from]);
        await direct[from].cluster('SETSLOT', slot, 'MIGRATING', ids[to]);
        // A resharding moves keys in batches: here the key indexes went first.
        await direct[from].migrate(nodes[to].host, nodes[to].port, '', 0, 5000, 'KEYS', k.waitIndex(g, 'alice'), k.waitIndex(g, 'bob'));
        const settled = <T>(p: Promise<T>) => p.then((v) => v, (err: Error) => err.message);
        const removing = settled(s.removeWaits(g, ['id-alice']));
        const erasing = settled(s.remove(g, ['bob']));
        const rest = (await direct[from].cluster('GETKEYSINSLOT', slot, 1000)) as string[];
        if (rest.length > 0) await direct[from].migrate(nodes[to].host, nodes[to].port, '', 0, 5000, 'KEYS', ...rest);
        for (const d of direct) await d.cluster('SETSLOT', slot, 'NODE', ids[to]);
        assert.is(await removing, 1);
        assert.is(await erasing, 1);
        assert.is(await client.exists(k.wait(g, 'id-alice'), k.wait(g, 'id-bob'), k.waitIndex(g, 'alice'), k.waitIndex(g, 'bob')), 0, 'records and their index members gone');
      } finally {
        for (const d of direct) d.disconnect();
      }
    });
  }

  test('comparePositions orders stream ids as 64-bit parts', () => {
    const s = driver.state;
    assert.ok(s.comparePositions('9-1', '10-0') < 0);
    assert.ok(s.comparePositions('5-10', '5-9') > 0);
    assert.is(s.comparePositions('18446744073709551615-1', '18446744073709551615-1'), 0);
    assert.ok(s.comparePositions('18446744073709551614-0', '18446744073709551615-0') < 0);
  });

  if (single) {
    test('load() of 500 keys and commit() of 500 writes with their acknowledgements are one script call each', async () => {
      const s = driver.state;
      const group = uniq('one-call');
      const { epoch } = (await s.own(group, 'c', 60_000))!;
      const { held } = await pending(group, 'c', 500);
      const calls = async () => {
        const info = await (client as Redis).info('commandstats');
        return [...info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)].reduce((n, m) => n + Number(m[2]), 0);
      };
      const before = await calls();
      const r = await s.commit(group, 'c', epoch, held.map((d, i) => write(`k${i}`, 0, '{}', { ack: [d] })), []);
      assert.is(r.conflicts.length, 0);
      assert.is((await calls()) - before, 1, 'one EVALSHA');
      const mid = await calls();
      const m = await s.load(group, held.map((_, i) => `k${i}`));
      assert.is(m.size, 500);
      assert.is((await calls()) - mid, 1);
      assert.is((await pendingOn(held[0].ref!, group)).length, 0);
    });
  }

  test(`the crash hook: killed after the state write, ${single ? 'with the acknowledgement stored (atomic)' : 'before the acknowledgement (left pending, applied position recorded)'}`, async () => {
    const s = driver.state;
    const group = uniq('crash');
    const { epoch } = (await s.own(group, 'child', 60_000))!;
    const { held } = await pending(group, 'child', 1);
    const d = held[0];
    const w = write('k', 0, '{"n":1}', { applied: { [d.ref!]: d.position }, ack: [{ topic: d.topic, position: d.position, attempts: d.attempts, event: null, raw: '', ref: d.ref! }] });
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      env: { ...process.env, STATE_REDIS_CHILD: JSON.stringify({ target, group, consumer: 'child', epoch, write: w }), AGENTBUS_TEST_KILL_AFTER_STATE_WRITE: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    const signal = await new Promise((r) => child.once('exit', (_, sig) => r(sig)));
    assert.is(signal, 'SIGKILL', `the child was killed by the hook (stdout: ${out})`);
    const rec = await s.get(group, 'k');
    assert.equal([rec?.version, rec?.state], [1, '{"n":1}'], 'the state was written');
    assert.equal(rec!.applied, { [d.ref!]: d.position });
    assert.is((await pendingOn(d.ref!, group)).length, single ? 0 : 1);
  });

  test.run();
}
