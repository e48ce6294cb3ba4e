// Redis-specific behaviour, each against a real redis-server this file starts on a free loopback port.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { defineScripts } from '../adapters/redis/scripts/script.js';
import { claimExpired, releaseLease, renewLease, setAttempts } from '../adapters/redis/scripts/lease.js';
import { ValidationError } from '../bus/errors.js';
import type { CloudEvent } from '../bus/event.js';
import { assertSameIds, rejects, sleep, uniq, waitFor } from './helpers/index.js';
import { freePort, redisForTests, startRedisServer, type RedisServer } from './helpers/redis.js';
import { startChild } from './conformance/processes.js';

const quiet = pino({ level: 'silent' });
const base = await redisForTests('redis behaviour', true);

/** A logger whose every line is kept, to assert on what reaches the log. */
function capture() {
  const lines: string[] = [];
  return { lines, logger: pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) }) };
}

if (base) {
  const server = base.server!;
  const url = server.url;
  const cli = (...args: string[]) => execFileSync('redis-cli', ['-p', String(server.port), ...args], { encoding: 'utf8' }).trim();

  const test = suite('redis: behaviour');

  test('foreign producers: flat fields (seed 001) and type/source/data (seed 003) written by redis-cli are events', async () => {
    const stream = uniq('verification_stream');
    const flatId = cli('XADD', stream, '*', 'user_wallet', '0xabc', 'did_id', '0', 'result', 'verified');
    const raw = await createRedisBus({ url, prefix: '', logger: quiet });
    const got: CloudEvent[] = [];
    const s1 = await raw.subscribe({ group: 'attestor', types: [stream], from: 'earliest' }, (e) => void got.push(e));
    await waitFor('the flat entry', () => got.length === 1);
    assert.equal(got[0], { specversion: '1.0', id: flatId, type: stream, source: `redis://${stream}`, time: new Date(Number(flatId.split('-')[0])).toISOString(), data: { user_wallet: '0xabc', did_id: '0', result: 'verified' } });

    const bus = await createRedisBus({ url, logger: quiet });
    const type = uniq('agent.health');
    const seeded = cli('XADD', `events:${type}`, '*', 'type', type, 'source', 'change_detection', 'data', '{"ok":true,"n":3}', 'timestamp', '2026-11-01T10:00:00');
    cli('XADD', `events:${type}`, '*', 'type', type, 'data', '{not json');
    const mine = await bus.publish(type, { ok: false });
    const seen: CloudEvent[] = [];
    const group = uniq('health');
    const s2 = await bus.subscribe({ group, types: [type], from: 'earliest' }, (e) => void seen.push(e));
    await waitFor('2 decodable entries', () => seen.length === 2);
    assert.equal(seen[0], { specversion: '1.0', id: seeded, type, source: 'change_detection', time: '2026-11-01T10:00:00', data: { ok: true, n: 3 } });
    assert.is(seen[1].id, mine);
    await waitFor('the malformed dead letter', async () => (await bus.deadLetters.list({ group })).length === 1);
    const [dl] = await bus.deadLetters.list({ group });
    assert.is(dl.reason, 'malformed');
    assert.ok(dl.error.includes('not JSON'), dl.error);
    await Promise.all([s1.close(), s2.close()]);
    await Promise.all([raw.close(), bus.close()]);
  });

  test('a pattern subscription finds streams that only a foreign producer writes', async () => {
    const root = uniq('py');
    cli('XADD', `events:${root}.health`, '*', 'type', `${root}.health`, 'source', 'python', 'data', '{"up":true}');
    const bus = await createRedisBus({ url, logger: quiet });
    const got: CloudEvent[] = [];
    const sub = await bus.subscribe({ group: uniq('g'), types: [`${root}.*`], from: 'earliest' }, (e) => void got.push(e));
    await waitFor('the foreign stream\'s event', () => got.length === 1, 5000);
    assert.equal([got[0].type, got[0].source, got[0].data], [`${root}.health`, 'python', { up: true }]);
    assert.ok((await bus.stats()).some((t) => t.type === `${root}.health`), 'stats lists the discovered topic');
    cli('XADD', `events:${root}.unrelated`, '*', 'k', 'v');
    cli('XADD', `events:${root}.unrelated`, '*', 'k', 'v');
    const trimming = await createRedisBus({ url, logger: quiet, retention: { maxLen: 1 } });
    await trimming.trim();
    assert.is(cli('XLEN', `events:${root}.unrelated`), '2', 'retention trimmed a stream agentbus never used');
    await trimming.close();
    await sub.close();
    await bus.close();
  });

  test("retention with prefix '' trims only topics published through agentbus, never a foreign stream it consumes", async () => {
    const root = uniq('ext');
    const foreign = `${root}.sensor`;
    for (let i = 0; i < 5; i++) cli('XADD', foreign, '*', 'reading', String(i));
    const bus = await createRedisBus({ url, prefix: '', logger: quiet, retention: { maxLen: 2, intervalMs: 60_000 } });
    const got: unknown[] = [];
    const sub = await bus.subscribe({ group: uniq('g'), types: [`${root}.*`], from: 'earliest' }, (e) => void got.push(e.data));
    await waitFor('the foreign entries', () => got.length === 5, 5000);
    const own = `${root}.mine`;
    await bus.publishBatch(Array.from({ length: 5 }, (_, i) => ({ type: own, data: i })));
    await waitFor('our own events too', () => got.length === 10, 5000);
    await bus.trim();
    assert.is(cli('XLEN', foreign), '5', 'retention trimmed a stream another program writes');
    assert.is(cli('XLEN', own), '2', 'retention did not trim a topic agentbus publishes');
    await sub.close();
    await bus.close();
  });

  test('key layout: <prefix><type> streams; dead letters share the stream key as hash tag', async () => {
    const bus = await createRedisBus({ url, prefix: 'app:', logger: quiet });
    const type = uniq('order.created');
    const group = uniq('billing');
    const sub = await bus.subscribe({ group, types: [type], maxAttempts: 1 }, () => {
      throw new Error('no');
    });
    await bus.publish(type, 1);
    await waitFor('dead letter', async () => (await bus.deadLetters.list({ group })).length === 1);
    assert.is(cli('TYPE', `app:${type}`), 'stream');
    assert.is(cli('XLEN', `{app:${type}}:dlq`), '1');
    assert.is(cli('CLUSTER', 'KEYSLOT', `{app:${type}}:dlq`).replace(/\D/g, '') || 'n/a', cli('CLUSTER', 'KEYSLOT', `app:${type}`).replace(/\D/g, '') || 'n/a');
    await sub.close();
    await bus.close();
  });

  test('a group lost to a restart without persistence (FLUSHALL) is recreated, and delivery goes on', async () => {
    const bus = await createRedisBus({ url, logger: quiet });
    const type = uniq('survivor');
    const got: unknown[] = [];
    const sub = await bus.subscribe({ group: uniq('g'), types: [type] }, (e) => void got.push(e.data));
    await bus.publish(type, 'before');
    await waitFor('before', () => got.length === 1);
    cli('FLUSHALL');
    await sleep(700); // the consumer meets NOGROUP and recreates the group
    await bus.publish(type, 'after');
    await waitFor('after', () => got.includes('after'), 10_000);
    await sub.close();
    await bus.close();
  });

  /** The most events the group held pending on `type`'s stream at once, sampled every 5 ms until `enough`. */
  async function mostPending(type: string, group: string, enough: () => boolean): Promise<number> {
    let held = 0;
    const probe = new Redis(url);
    while (!enough()) {
      const [count] = (await probe.xpending(`events:${type}`, group)) as [number];
      held = Math.max(held, Number(count));
      await sleep(5);
    }
    probe.disconnect();
    return held;
  }

  for (const [readAhead, least, most] of [[0, 1, 4], [4, 5, 8]] as const) {
    test(`a consumer holds no more than concurrency + readAhead: concurrency 4, readAhead ${readAhead}`, async () => {
      const bus = await createRedisBus({ url, logger: quiet });
      const type = uniq('backlog');
      const group = uniq('g');
      await bus.publishBatch(Array.from({ length: 300 }, (_, i) => ({ type, data: i })));
      let done = 0;
      let inFlight = 0;
      let mostRunning = 0;
      const sub = await bus.subscribe({ group, types: [type], concurrency: 4, readAhead, from: 'earliest' }, async () => {
        mostRunning = Math.max(mostRunning, ++inFlight);
        await sleep(10);
        inFlight--;
        done++;
      });
      const held = await mostPending(type, group, () => done >= 100);
      assert.ok(held <= most, `pending reached ${held} with concurrency 4, readAhead ${readAhead}`);
      assert.ok(held >= least, `pending reached only ${held} with concurrency 4, readAhead ${readAhead}`);
      assert.is(mostRunning, 4, 'handlers at once: concurrency');
      await sub.close();
      await bus.close();
    });
  }

  test('readAhead unset, handlers of about 1 ms: the consumer reads ahead (holds more than concurrency)', async () => {
    const bus = await createRedisBus({ url, logger: quiet });
    const type = uniq('fast');
    const group = uniq('g');
    await bus.publishBatch(Array.from({ length: 3000 }, (_, i) => ({ type, data: i })));
    let done = 0;
    const sub = await bus.subscribe({ group, types: [type], concurrency: 4, from: 'earliest' }, async () => {
      await sleep(1);
      done++;
    });
    const held = await mostPending(type, group, () => done >= 1500);
    assert.ok(held > 4, `pending reached only ${held}: no read-ahead with handlers under 10 ms`);
    assert.ok(held <= 12, `pending reached ${held}: over concurrency + 2 x concurrency`);
    await sub.close();
    await bus.close();
  });

  test('a drain whose handlers return at once reads its whole room a time (concurrency + readAhead), not half of it', async () => {
    const bus = await createRedisBus({ url, logger: quiet });
    const type = uniq('room');
    const group = uniq('g');
    const stream = `events:${type}`;
    await bus.publishBatch(Array.from({ length: 960 }, (_, i) => ({ type, data: i })));
    const monitored = new Redis(url);
    const monitor = await monitored.monitor();
    const counts: number[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (String(args[0]).toLowerCase() === 'xreadgroup' && args.includes(stream)) counts.push(Number(args[args.indexOf('COUNT') + 1]));
    });
    let done = 0;
    const sub = await bus.subscribe({ group, types: [type], concurrency: 16, readAhead: 32, from: 'earliest' }, () => void done++);
    await waitFor('960 handled', () => done === 960);
    const probe = new Redis(url);
    await waitFor('all acknowledged', async () => Number(((await probe.xpending(stream, group)) as [number])[0]) === 0);
    await sub.close();
    await bus.close();
    monitor.disconnect();
    monitored.disconnect();
    probe.disconnect();
    // Nothing running when a read goes out: it takes all 48 there is room for (it took 24 at most,
    // half, as while handlers run, for twice the reads).
    assert.is(Math.max(...counts), 48, `XREADGROUP COUNTs: ${counts.join(' ')}`);
    assert.ok(counts.length <= 30, `${counts.length} XREADGROUPs for 960 events: ${counts.join(' ')}`);
  });

  /**
   * Counts, per client (MONITOR's address:port), the XACKs and XREADGROUPs on `stream`;
   * untilAcknowledged waits for no pending entry in `group`, stops, checks one reader connection and
   * says how many XACKs came from it.
   */
  async function watchAcks(stream: string) {
    const monitored = new Redis(url);
    const monitor = await monitored.monitor();
    const by = { xack: new Map<string, number>(), xreadgroup: new Map<string, number>() };
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      const cmd = String(args[0]).toLowerCase();
      if ((cmd === 'xack' || cmd === 'xreadgroup') && args.includes(stream)) by[cmd].set(source, (by[cmd].get(source) ?? 0) + 1);
    });
    return {
      async untilAcknowledged(group: string) {
        const probe = new Redis(url);
        await waitFor('all acknowledged', async () => Number(((await probe.xpending(stream, group)) as [number])[0]) === 0);
        probe.disconnect();
        monitor.disconnect();
        monitored.disconnect();
        const readers = [...by.xreadgroup.keys()];
        assert.is(readers.length, 1, `XREADGROUP from ${readers.join(', ')}`);
        const acks = [...by.xack.values()].reduce((a, b) => a + b, 0);
        return { by, readers, acks, alongReads: by.xack.get(readers[0]!) ?? 0 };
      },
    };
  }

  test('a subscription closed while Redis is down closes (its blocked read no longer waits for Redis to come back)', async () => {
    const srv = await startRedisServer();
    const bus = await createRedisBus({ url: srv.url, logger: quiet });
    const sub = await bus.subscribe({ group: uniq('g'), types: [uniq('outage')] }, () => {});
    await sleep(300); // its XREADGROUP is blocked on the server now
    await srv.stop(true);
    await sleep(500);
    let closed = false;
    const closing = sub.close().then(() => (closed = true));
    // The read ends at once; the heartbeat and forget would wait out the command connection's
    // retries (about 75 s measured) but are given up after CLOSE_STORE_MS (redis-close-outage.test.ts).
    await waitFor('the subscription closed', () => closed, 30_000, 200);
    await closing;
    await bus.close();
  });

  test('one event at a time: a handler that finishes at once is acknowledged on the reader connection, with the next XREADGROUP', async () => {
    const bus = await createRedisBus({ url, logger: quiet });
    const type = uniq('trickle');
    const group = uniq('g');
    const stream = `events:${type}`;
    const watch = await watchAcks(stream);
    let done = 0;
    const sub = await bus.subscribe({ group, types: [type], concurrency: 16 }, () => void done++);
    for (let i = 0; i < 30; i++) {
      await bus.publish(type, i);
      await waitFor(`event ${i} handled`, () => done === i + 1);
      await sleep(5);
    }
    const { by, readers, acks, alongReads } = await watch.untilAcknowledged(group);
    // Each event comes alone: its ack goes with the read sent after it (the last one may go alone).
    assert.ok(alongReads >= 25, `${alongReads} of ${acks} XACKs came from the reader connection ${readers[0]}: ${JSON.stringify([...by.xack])}`);
    await sub.close();
    await bus.close();
  });

  test('a drain acknowledges on the reader connection, in the round trip of its next XREADGROUP', async () => {
    const bus = await createRedisBus({ url, logger: quiet });
    const type = uniq('acks');
    const group = uniq('g');
    const stream = `events:${type}`;
    await bus.publishBatch(Array.from({ length: 400 }, (_, i) => ({ type, data: i })));
    // MONITOR names the client (address:port) of every command: who sends XACK, who XREADGROUP.
    const watch = await watchAcks(stream);
    let done = 0;
    const sub = await bus.subscribe({ group, types: [type], concurrency: 16, from: 'earliest' }, () => void done++);
    await waitFor('400 handled', () => done === 400);
    const { by, readers, acks, alongReads } = await watch.untilAcknowledged(group);
    assert.ok(acks > 0);
    // Acks wait for the next read; only those no read picks up soon go out on the command connection.
    assert.ok(alongReads >= acks / 2, `${alongReads} of ${acks} XACKs came from the reader connection ${readers[0]}: ${JSON.stringify([...by.xack])}`);
    await sub.close();
    await bus.close();
  });

  test('reclaim follows the XAUTOCLAIM cursor past COUNT x 10 entries that are still leased', async () => {
    const bus = await createRedisBus({ url, logger: quiet });
    const type = uniq('deep');
    const group = uniq('g');
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    let live = 0;
    const alive = await bus.subscribe({ group, consumer: 'alive', types: [type], concurrency: 600, claimIdleMs: 400 }, () => {
      live++;
      return hold;
    });
    await bus.publishBatch(Array.from({ length: 600 }, (_, i) => ({ type, data: i })));
    await waitFor('600 held by a live consumer', () => live === 600);
    await alive.close({ drain: false }); // stops fetching, but its 600 leases are kept fresh below
    const dying: string[] = [];
    const dead = await bus.subscribe({ group, consumer: 'dead', types: [type], concurrency: 100, claimIdleMs: 400 }, (e) => {
      dying.push(e.id);
      return new Promise(() => {});
    });
    const probe = new Redis(url);
    const ids = ((await probe.xrange(`events:${type}`, '-', '+')) as unknown as [string][]).slice(0, 600).map(([id]) => id);
    const renew = setInterval(() => void probe.xclaim(`events:${type}`, group, 'alive', 0, ...ids, 'JUSTID').catch(() => {}), 100);
    const tail = await bus.publishBatch(Array.from({ length: 100 }, (_, i) => ({ type, data: 600 + i })));
    await waitFor('100 taken by the consumer that will die', () => dying.length === 100);
    await dead.close({ drain: false });
    const got: string[] = [];
    const heir = await bus.subscribe({ group, consumer: 'heir', types: [type], concurrency: 5, claimIdleMs: 400 }, (e) => void got.push(e.id));
    await waitFor('the dead consumer\'s 100, behind 600 live leases', () => got.length >= 100, 15_000);
    clearInterval(renew);
    assertSameIds(got.slice(0, 100), tail);
    release();
    probe.disconnect();
    await heir.close({ drain: false });
    await bus.close();
  });

  test('the claim script takes expired entries with their delivery counts in one step; acknowledged ones are not taken', async () => {
    // Claim and count used to be two round trips: an entry acknowledged between them was delivered
    // again as attempt 1. In one script nothing runs in between; this pins what the script returns.
    const raw = new Redis(url);
    defineScripts(raw, [claimExpired]);
    const key = uniq('claims');
    const ids = [0, 1, 2, 3].map((i) => cli('XADD', key, '*', 'event', `{"n":${i}}`));
    cli('XGROUP', 'CREATE', key, 'g', '0');
    cli('XREADGROUP', 'GROUP', 'g', 'first', 'COUNT', '4', 'STREAMS', key, '>');
    cli('XACK', key, 'g', ids[1]); // acknowledged by its holder
    cli('XCLAIM', key, 'g', 'first', '0', ids[2], 'RETRYCOUNT', '4', 'JUSTID'); // delivered 4 times so far
    cli('XDEL', key, ids[3]); // trimmed while pending
    const [next, entries, deleted, counts] = await claimExpired.call(raw, key, 'g', 'heir', 0, '0-0', 10);
    raw.disconnect();
    assert.is(next, '0-0');
    const live = entries.filter(([, f]) => f !== null);
    assert.equal(live.map(([id]) => id), [ids[0], ids[2]], 'the acknowledged entry was taken');
    assert.equal(live.map(([, f]) => f), [['event', '{"n":0}'], ['event', '{"n":2}']]);
    assert.equal(counts.filter((_, i) => entries[i][1] !== null), [2, 5], 'delivery counts, this claim included');
    assert.equal([...deleted, ...entries.filter(([, f]) => f === null).map(([id]) => id)], [ids[3]]);
    assert.is(cli('XPENDING', key, 'g', '-', '+', '10', 'heir').split('\n').filter((l) => /^\d+-\d+$/.test(l)).length, 2);
  });

  test('the lease scripts renew, release and count an attempt, each only while the named consumer holds the entry', async () => {
    // One script per job (they were one script told apart by '' arguments). Each leaves an entry
    // another consumer holds alone, so a late call never steals it back.
    const raw = new Redis(url);
    defineScripts(raw, [renewLease, releaseLease, setAttempts]);
    const key = uniq('leases');
    const ids = [0, 1].map((i) => cli('XADD', key, '*', 'event', `{"n":${i}}`));
    cli('XGROUP', 'CREATE', key, 'g', '0');
    cli('XREADGROUP', 'GROUP', 'g', 'mine', 'COUNT', '1', 'STREAMS', key, '>');
    cli('XREADGROUP', 'GROUP', 'g', 'other', 'COUNT', '1', 'STREAMS', key, '>');
    /** [owner, idle ms, delivery count] of an entry. */
    const pending = async (id: string) => {
      const [[, owner, idle, count]] = (await raw.xpending(key, 'g', id, id, 1)) as [string, string, number, number][];
      return { owner, idle: Number(idle), count: Number(count) };
    };
    await sleep(300);
    assert.is(await renewLease.call(raw, key, 'g', 'mine', ids), 1, 'renewed its own entry only');
    const [renewed, untouched] = [await pending(ids[0]), await pending(ids[1])];
    assert.ok(untouched.idle >= 300, "the other consumer's entry was not touched");
    assert.ok(renewed.idle < untouched.idle, `its idle time restarted: ${renewed.idle} ms, the other's ${untouched.idle} ms`);
    assert.is(renewed.count, 1, 'a renewal counts no attempt');

    assert.is(await setAttempts.call(raw, key, 'g', 'mine', 4, ids[0]), 1);
    assert.is(await setAttempts.call(raw, key, 'g', 'mine', 9, ids[1]), 0, 'not held by mine');
    assert.equal([(await pending(ids[0])).count, (await pending(ids[1])).count], [4, 1]);

    assert.is(await releaseLease.call(raw, key, 'g', 'other', 2 ** 40, 3, ids[0]), 0, 'not held by other');
    assert.is(await releaseLease.call(raw, key, 'g', 'mine', 2 ** 40, 5, ids[0]), 1);
    const released = await pending(ids[0]);
    assert.ok(released.idle >= 2 ** 40, `released: idle ${released.idle}`);
    assert.is(released.count, 5, 'the attempts made so far are kept');
    raw.disconnect();
  });

  test('a prefix with braces is refused as INVALID_OPTION (a ValidationError) before connecting', async () => {
    const err = await rejects(() => createRedisBus({ url, prefix: 'app{1}:', logger: quiet }), 'INVALID_OPTION', 'invalid prefix "app{1}:"', 'braces');
    assert.instance(err, ValidationError);
    await rejects(() => createRedisBus({ url, prefix: 42 as unknown as string, logger: quiet }), 'INVALID_OPTION', 'invalid prefix 42');
  });

  test('dedup is atomic across connections', async () => {
    const [a, b] = [await createRedisBus({ url, logger: quiet }), await createRedisBus({ url, logger: quiet })];
    const type = uniq('webhook');
    const id = uniq('gh');
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).publish(type, { i }, { id })));
    assert.is(cli('XLEN', `events:${type}`), '1');
    await Promise.all([a.close(), b.close()]);
  });

  test('a publish whose XADD fails leaves no dedup marker: the retry with the same id is stored and delivered', async () => {
    const bus = await createRedisBus({ url, logger: quiet });
    const failing = async (fn: () => Promise<unknown>, mention: string) => {
      const err = await fn().then(() => null, (e: Error) => e);
      assert.ok(err?.message.includes(mention), `expected a rejection mentioning ${mention}, got ${err?.message}`);
    };
    // The stream key holds a string (WRONGTYPE).
    const type = uniq('webhook');
    cli('SET', `events:${type}`, 'not a stream');
    await failing(() => bus.publish(type, { try: 1 }, { id: 'x' }), 'WRONGTYPE');
    cli('DEL', `events:${type}`);
    const got: unknown[] = [];
    const sub = await bus.subscribe({ group: uniq('g'), types: [type], from: 'earliest' }, (e) => void got.push(e.data));
    assert.is(await bus.publish(type, { try: 2 }, { id: 'x' }), 'x');
    await waitFor('the retried event', () => got.length === 1);
    assert.equal(got, [{ try: 2 }]);
    await sub.close();
    // The stream's last id is the largest there is: no id left for XADD *.
    const full = uniq('webhook');
    cli('XADD', `events:${full}`, '18446744073709551615-18446744073709551615', 'k', 'v');
    await failing(() => bus.publishBatch([{ type: full, data: { try: 1 }, id: 'y' }]), 'exhausted');
    cli('DEL', `events:${full}`);
    await bus.publishBatch([{ type: full, data: { try: 2 }, id: 'y' }]);
    const stored: unknown[] = [];
    await bus.replay({ types: [full] }, (e) => void stored.push(e.data));
    assert.equal(stored, [{ try: 2 }]);
    await bus.close();
  });

  test('delayed events: due set {<stream>}:due, topic in due-topics; a topic whose stream key holds another type stays due and logs, other topics are moved on time', async () => {
    const { lines, logger } = capture();
    const bus = await createRedisBus({ url, logger });
    const [good, bad] = [uniq('due.good'), uniq('due.bad')];
    cli('SET', `events:${bad}`, 'not a stream');
    const got: string[] = [];
    await bus.subscribe({ group: uniq('g'), types: [good] }, (e) => void got.push(e.id));
    await bus.publish(bad, 1, { delay: 50 });
    const ids = [await bus.publish(good, 1, { delay: 200 }), await bus.publish(good, 2, { delay: 400 })];
    assert.is(cli('ZCARD', `{events:${good}}:due`), '2');
    assert.ok(cli('SMEMBERS', 'events:{agentbus}:due-topics').split('\n').includes(good));
    await waitFor('both good ones delivered', () => got.length === 2, 5000);
    assert.equal(got, ids);
    assert.is(cli('ZCARD', `{events:${good}}:due`), '0');
    assert.is(cli('ZCARD', `{events:${bad}}:due`), '1', 'the bad one stays due');
    await waitFor('the error logged', () => lines.some((l) => l.includes('store error while moving due delayed events') && l.includes('WRONGTYPE')));
    assert.is(lines.filter((l) => l.includes('store error while moving due delayed events')).length, 1, 'logged once a minute at most');
    await bus.close();
    // Nothing of the bad topic is left for the scenarios after this one (retention, movers).
    cli('DEL', `{events:${bad}}:due`, `events:${bad}`);
    for (const set of ['due-topics', 'published', 'topics']) cli('SREM', `events:{agentbus}:${set}`, bad);
  });

  test('retention by age trims with MINID', async () => {
    const bus = await createRedisBus({ url, logger: quiet, retention: { maxAgeMs: 300, intervalMs: 3_600_000 } });
    const type = uniq('aging');
    await bus.publishBatch(Array.from({ length: 10 }, (_, i) => ({ type, data: i })));
    await sleep(450);
    const fresh = await bus.publishBatch(Array.from({ length: 5 }, (_, i) => ({ type, data: 10 + i })));
    assert.ok((await bus.trim()) >= 10); // every topic on this server is trimmed, others' too
    const left: string[] = [];
    await bus.replay({ types: [type] }, (e) => void left.push(e.id));
    assert.equal(left, fresh);
    await bus.close();
  });

  test('dead letters keep the stack in a "stack" field; entries written before it (no such field) list, show and retry as before', async () => {
    const bus = await createRedisBus({ url, logger: quiet });
    const raw = new Redis(url);
    const type = uniq('dlstack');
    const group = uniq('g');
    const dlq = `{events:${type}}:dlq`;
    const got: unknown[] = [];
    const sub = await bus.subscribe({ group, types: [type], maxAttempts: 1 }, (e) => {
      if (e.data === 'fail') throw new Error('new failure');
      got.push(e.data);
    });
    const body = JSON.stringify({ specversion: '1.0', id: 'old-1', type, source: '/old', time: new Date().toISOString(), data: 'old' });
    // As the dead-letter script of an older agentbus wrote it: these fields, no stack.
    await raw.xadd(dlq, '*', 'group', group, 'position', '1-1', 'reason', 'failed', 'error', 'Error: old failure', 'attempts', '5', 'failed_at', String(Date.now()), 'body', body);
    await raw.hincrby(`{events:${type}}:dlqcount`, group, 1);
    await bus.publish(type, 'fail');
    await waitFor('the new dead letter', async () => (await bus.deadLetters.list({ group })).length === 2);
    const [old, fresh] = await bus.deadLetters.list({ group });
    assert.equal([old.error, old.attempts, old.event?.data, 'stack' in old], ['Error: old failure', 5, 'old', false]);
    assert.equal(await bus.deadLetters.get(old.id), old);
    assert.ok(fresh.stack!.startsWith('Error: new failure\n    at '), fresh.stack);
    const [, [, fields]] = (await raw.xrange(dlq, '-', '+')) as [string, string[]][];
    assert.equal(fields.filter((_, i) => i % 2 === 0), ['group', 'position', 'reason', 'error', 'attempts', 'failed_at', 'body', 'stack']);
    assert.is(await bus.deadLetters.retry([old.id]), 1);
    await waitFor('the old dead letter retried', () => got.length === 1);
    assert.equal(got, ['old']);
    await sub.close();
    raw.disconnect();
    await bus.close();
  });

  test('dead-letter counts: kept with each write, rebuilt once for dead letters older than the counts; dlq ls reads about limit entries; a damaged failed_at lists as null', async () => {
    const bus = await createRedisBus({ url, logger: quiet });
    const raw = new Redis(url);
    const type = uniq('dlcount');
    const dlq = `{events:${type}}:dlq`;
    for (const g of ['g1', 'g2']) await raw.xgroup('CREATE', `events:${type}`, g, '$', 'MKSTREAM');
    await raw.sadd('events:{agentbus}:topics', type);
    // Written as an older agentbus did: no counts beside them.
    const p = raw.pipeline();
    for (let i = 0; i < 2000; i++) {
      const group = i < 800 ? 'g1' : 'g2';
      p.xadd(dlq, '*', 'group', group, 'position', `1-${i}`, 'reason', 'failed', 'error', 'Error: x', 'attempts', '3', 'failed_at', i === 5 ? 'garbage' : String(Date.now()), 'body', '{}');
    }
    await p.exec();
    const dead = async () => Object.fromEntries((await bus.stats()).find((t) => t.type === type)!.groups.map((g) => [g.group, g.deadLetters]));
    assert.equal(await dead(), { g1: 800, g2: 1200 });
    assert.equal(await raw.hgetall(`{events:${type}}:dlqcount`), { g1: '800', g2: '1200' }, 'counts stored once rebuilt');

    const sent = async () => Number(/total_net_output_bytes:(\d+)/.exec(await raw.info('stats'))![1]);
    let before = await sent();
    const first = await bus.deadLetters.list({ type, limit: 10 });
    const bytes = (await sent()) - before;
    assert.is(first.length, 10);
    assert.ok(bytes < 20_000, `dlq ls --limit 10 made the server send ${bytes} bytes`);
    assert.is(first[5].failedAt, null, 'a damaged failed_at');
    assert.ok(first.every((d, i) => i === 5 || typeof d.failedAt === 'string'));
    before = await sent();
    const g2 = await bus.deadLetters.list({ type, group: 'g2', limit: 5 });
    assert.equal(g2.map((d) => d.position), ['1-800', '1-801', '1-802', '1-803', '1-804'], 'oldest first, past the other group');
    assert.ok((await sent()) - before < 200_000, 'a group filter reads on only until it has enough');

    await bus.deadLetters.retry([first[0].id]);
    await bus.deadLetters.purge([g2[0].id, g2[1].id, 'nope/1-1']);
    assert.equal(await raw.hgetall(`{events:${type}}:dlqcount`), { g1: '799', g2: '1198' }, 'retry and purge keep the counts');
    assert.equal(await dead(), { g1: 799, g2: 1198 });
    raw.disconnect();
    await bus.close();
  });

  test('lag after an AOF restart: a drained group has lag 0, whatever the reloaded counters say', async () => {
    const aof = await startRedisServer(['--appendonly', 'yes']);
    const bus = await createRedisBus({ url: aof.url, logger: quiet });
    const type = uniq('aof');
    const group = uniq('g');
    let n = 0;
    const sub = await bus.subscribe({ group, types: [type], concurrency: 64 }, () => void n++);
    for (let i = 0; i < 10; i++) await bus.publishBatch(Array.from({ length: 500 }, (_, j) => ({ type, data: j })));
    await waitFor('5000 handled', () => n === 5000, 20_000);
    await sub.close();
    await bus.rewind({ group, type, from: 'earliest' });
    const again = await bus.subscribe({ group, types: [type], concurrency: 64 }, () => void n++);
    await waitFor('5000 handled again', () => n === 10_000, 20_000);
    await again.close();
    const lag = async (b: typeof bus) => (await b.stats()).find((t) => t.type === type)!.groups[0].lag;
    assert.is(await lag(bus), 0);
    await bus.close();
    await aof.stop();
    await aof.start();
    const after = await createRedisBus({ url: aof.url, logger: quiet });
    assert.is(await lag(after), 0, 'lag after the AOF reload');
    await after.publish(type, 'one more');
    assert.is(await lag(after), 1);
    await after.close();
    await aof.stop();
  });

  test('consumers of SIGKILLed processes are removed from the group once they hold nothing', async () => {
    const bus = await createRedisBus({ url, logger: quiet });
    const type = uniq('killed');
    const group = uniq('g');
    for (let i = 0; i < 3; i++) {
      const child = startChild({ bus: { adapter: 'redis', url }, role: 'hang', type, group, concurrency: 1, claimIdleMs: 300 });
      await waitFor('child ready', () => child.lines.includes('ready'), 20_000);
      await bus.publish(type, i);
      await waitFor('child holds one', () => child.lines.some((l) => l.startsWith('got ')), 10_000);
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    const records = async () => ((await bus.stats(), cli('XINFO', 'CONSUMERS', `events:${type}`, group)).match(/^name$/gm) ?? []).length;
    assert.is(await records(), 3);
    const got: unknown[] = [];
    const sub = await bus.subscribe({ group, consumer: 'survivor', types: [type], claimIdleMs: 300 }, (e) => void got.push(e.data));
    await waitFor('3 reclaimed', () => got.length === 3, 10_000);
    await waitFor('only the survivor left', async () => (await records()) === 1, 30_000, 250);
    assert.is((await bus.stats()).find((t) => t.type === type)!.groups[0].consumers, 1);
    await sub.close();
    await bus.close();
  });

  test('Redis unreachable at start: CONNECTION_FAILED within the connect timeout, naming the address', async () => {
    const port = await freePort();
    const t0 = Date.now();
    await rejects(() => createRedisBus({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 1000, logger: quiet }), 'CONNECTION_FAILED', `127.0.0.1:${port}`);
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  });

  test.after(() => server.stop());
  test.run();

  const conn = suite('redis: connection');
  const secret = 's3cr3t-Pa55';

  conn('requirepass: REDIS_URL with a password works; a wrong password fails; the password never reaches a log line', async () => {
    const srv = await startRedisServer(['--requirepass', secret]);
    const log = capture();
    const bus = await createRedisBus({}, { REDIS_URL: `redis://:${secret}@127.0.0.1:${srv.port}/2`, LOG_LEVEL: 'debug' });
    const type = uniq('auth');
    const got: unknown[] = [];
    const sub = await bus.subscribe({ group: 'g', types: [type] }, (e) => void got.push(e.data));
    await bus.publish(type, 'in db 2');
    await waitFor('delivered', () => got.length === 1);
    assert.is(execFileSync('redis-cli', ['-p', String(srv.port), '-a', secret, '-n', '2', 'XLEN', `events:${type}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(), '1');
    await sub.close();
    await bus.close();
    const err = await rejects(() => createRedisBus({ url: `redis://:wrong-${secret}@127.0.0.1:${srv.port}`, connectTimeoutMs: 1500, logger: log.logger }), 'CONNECTION_FAILED');
    assert.not.ok(err.message.includes(secret), err.message);
    assert.match(err.message, /refused the credentials \(WRONGPASS.*\): check REDIS_USERNAME \/ REDIS_PASSWORD/);
    const viaEnv = await createRedisBus({ logger: log.logger }, { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(srv.port), REDIS_PASSWORD: secret, REDIS_DB: '3' });
    await viaEnv.publish(type, 'env');
    await viaEnv.close();
    await srv.stop(true);
    await sleep(300); // reconnect attempts to a dead server get logged
    assert.ok(log.lines.length > 0, 'nothing was logged at all');
    for (const line of log.lines) assert.not.ok(line.includes(secret), `password in a log line: ${line}`);
  });

  conn('an ACL user', async () => {
    const srv = await startRedisServer(['--user', 'agent', 'on', '>agentpw', '~*', '&*', '+@all', '--user', 'noping', 'on', '>nopw', '~*', '&*', '+@all', '-ping', '--user', 'default', 'off']);
    const bus = await createRedisBus({ url: `redis://agent:agentpw@127.0.0.1:${srv.port}`, logger: quiet });
    const type = uniq('acl');
    const got: unknown[] = [];
    const sub = await bus.subscribe({ group: 'g', types: [type] }, (e) => void got.push(e.data));
    await bus.publish(type, 'as agent');
    await waitFor('delivered', () => got.length === 1);
    await sub.close();
    await bus.close();
    const err = await rejects(() => createRedisBus({ url: `redis://127.0.0.1:${srv.port}`, connectTimeoutMs: 1000, logger: quiet }), 'CONNECTION_FAILED');
    assert.match(err.message, /refused the credentials/);
    // Logged in, but a command refused: the ACL rules, not the password.
    const denied = await rejects(() => createRedisBus({ url: `redis://noping:nopw@127.0.0.1:${srv.port}`, connectTimeoutMs: 1000, logger: quiet }), 'CONNECTION_FAILED');
    assert.match(denied.message, /denied a command to this user \(NOPERM.*\): check the ACL rules of this user/);
    await srv.stop();
  });

  conn('TLS (rediss://) with a certificate made by openssl', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentbus-tls-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=agentbus test CA');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.ext');
    const port = await freePort();
    const srv = await startRedisServer(
      ['--port', '0', '--tls-port', String(port), '--tls-cert-file', join(dir, 'server.crt'), '--tls-key-file', join(dir, 'server.key'), '--tls-ca-cert-file', join(dir, 'ca.crt'), '--tls-auth-clients', 'no'],
      { port, scheme: 'rediss' },
    );
    const bus = await createRedisBus({ url: `rediss://127.0.0.1:${port}`, tls: { ca: readFileSync(join(dir, 'ca.crt')) }, logger: quiet });
    const type = uniq('tls');
    const got: unknown[] = [];
    const sub = await bus.subscribe({ group: 'g', types: [type] }, (e) => void got.push(e.data));
    await bus.publish(type, 'encrypted');
    await waitFor('delivered over TLS', () => got.length === 1);
    await sub.close();
    await bus.close();
    await rejects(() => createRedisBus({ url: `rediss://127.0.0.1:${port}`, connectTimeoutMs: 1500, logger: quiet }), 'CONNECTION_FAILED'); // unknown CA
    await srv.stop();
  });

  conn('a consumer survives a Redis restart (AOF): nothing acknowledged to a publisher is lost', async () => {
    const srv: RedisServer = await startRedisServer(['--appendonly', 'yes', '--appendfsync', 'always']);
    const bus = await createRedisBus({ url: srv.url, logger: quiet });
    const type = uniq('durable');
    const got = new Set<string>();
    const sub = await bus.subscribe({ group: 'g', types: [type], concurrency: 8 }, (e) => void got.add(e.id));
    const first = await bus.publishBatch(Array.from({ length: 50 }, (_, i) => ({ type, data: i })));
    await srv.stop(true); // SIGKILL: only what was fsynced survives
    const during = bus.publishBatch(Array.from({ length: 20 }, (_, i) => ({ type, data: 100 + i }))); // waits for the server
    await sleep(300);
    await srv.start();
    const second = await during;
    const third = await bus.publishBatch(Array.from({ length: 30 }, (_, i) => ({ type, data: 200 + i })));
    await waitFor('all 100 handled after the restart', () => [...first, ...second, ...third].every((id) => got.has(id)), 20_000);
    await sub.close();
    await bus.close();
    await srv.stop();
  });

  conn('delayed events survive a Redis restart (AOF): none lost, each delivered once, none before its due time', async () => {
    const srv: RedisServer = await startRedisServer(['--appendonly', 'yes', '--appendfsync', 'always']);
    const bus = await createRedisBus({ url: srv.url, logger: quiet });
    const type = uniq('durable-due');
    const got: Array<[string, number]> = [];
    const sub = await bus.subscribe({ group: 'g', types: [type], concurrency: 8 }, (e) => void got.push([e.id, Date.now()]));
    const t0 = Date.now();
    const ids = await bus.publishBatch(Array.from({ length: 40 }, (_, i) => ({ type, data: i, delay: 1500 + 10 * i })));
    await srv.stop(true); // SIGKILL: only what was fsynced survives
    await sleep(300);
    await srv.start();
    await waitFor('all 40 delivered after the restart', () => got.length >= 40, 20_000);
    await sleep(300);
    assertSameIds(got.map(([id]) => id), ids);
    for (const [id, at] of got) assert.ok(at - t0 >= 1500 + 10 * ids.indexOf(id), `${id} delivered ${at - t0} ms after publish`);
    await sub.close();
    await bus.close();
    await srv.stop();
  });

  conn.run();
}
