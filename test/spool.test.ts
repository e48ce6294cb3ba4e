// The Redis bus' spool (the `spool` option) against a real redis-server this file starts, stops and
// restarts on the same port (AOF on, so what Redis stored before an outage survives it).
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRedisBus } from '../adapters/redis/index.js';
import type { Bus } from '../index.js';
import { HostMetrics } from '../runtime/metrics.js';
import { rejects, sleep, uniq, waitFor } from './helpers/index.js';
import { hasRedisServer, startRedisServer } from './helpers/redis.js';
import { workLog } from './helpers/host.js';

const dir = () => mkdtempSync(join(tmpdir(), 'agentbus-spool-'));

/** A logger whose lines the test reads. */
function captured() {
  const lines: Array<{ level: number; msg: string }> = [];
  return { lines, logger: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }) };
}

/** The stored events of `type`, oldest first, as replay gives them: id and data.n (or data). */
async function stored(bus: Bus, type: string): Promise<Array<{ id: string; n: unknown }>> {
  const out: Array<{ id: string; n: unknown }> = [];
  await bus.replay({ types: [type] }, (e) => void out.push({ id: e.id, n: (e.data as { n?: unknown })?.n }));
  return out;
}

const spoolEmpty = (bus: Bus) => bus.spool!.stats().events === 0;

if (!hasRedisServer()) {
  test.skip('spool: no redis-server on PATH', () => {});
} else {
  const server = await startRedisServer(['--appendonly', 'yes', '--enable-debug-command', 'local']);
  // Stopped and started by the tests; a failed test leaves it running for the next one.
  let down = false;
  const stop = async () => {
    await server.stop();
    down = true;
  };
  const up = async () => {
    if (!down) return;
    await server.start();
    down = false;
  };

  test('publishes while Redis is down resolve spooled; after the restart each is in Redis once, in order per topic, with its id; refusals Redis answers still reject', async () => {
    const { lines, logger } = captured();
    const path = join(dir(), 'spool.db');
    const bus = await createRedisBus({ url: server.url, logger, spool: { path } });
    const small = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }), spool: { path: join(dir(), 'small.db'), maxBytes: 2048 } });
    const metrics = new HostMetrics(() => bus.stats(), new Set(), undefined, () => bus.spool!.stats());
    const metric = async (name: string) => Number((await metrics.registry.getSingleMetricAsString(name)).split('\n').find((l) => l.startsWith(name))!.split(' ').pop());
    const [a, b, c, wrong, big] = [uniq('spool.a'), uniq('spool.b'), uniq('spool.c'), uniq('spool.wrong'), uniq('spool.big')];
    try {
      const first = await bus.publishDetailed(a, { n: 0 });
      assert.is(first.spooled, false, 'Redis up: stored, not spooled');
      // An error Redis answered is no outage: it rejects, nothing is spooled.
      const raw = new Redis(server.url);
      await raw.set(`events:${wrong}`, 'not a stream');
      raw.disconnect();
      await bus.publish(wrong, {}).then(() => assert.unreachable('WRONGTYPE should reject'), (err: Error) => assert.match(err.message, /WRONGTYPE/));
      assert.is(bus.spool!.stats().events, 0);

      await stop();
      const one = await bus.publishDetailed(a, { n: 1 });
      assert.ok(one.spooled, 'a publish during the outage resolves spooled');
      const batch = await bus.publishBatchDetailed([
        { type: a, data: { n: 2 } },
        { type: b, data: { n: 0 } },
        { type: a, data: { n: 3 } },
      ]);
      assert.equal(batch.map((r) => r.spooled), [true, true, true]);
      const custom = await bus.publishDetailed(b, { n: 1 }, { id: 'caller-id-1' });
      assert.equal(custom, { id: 'caller-id-1', spooled: true });
      const later = await bus.publishDetailed(c, { n: 'later' }, { delay: 200 });
      assert.ok(later.spooled, 'a delayed publish spools too');
      assert.is(await bus.publish(a, { n: 4 }).then((id) => typeof id), 'string', 'publish resolves with the id as before');

      const s = bus.spool!.stats();
      assert.equal([s.events, s.spooled, s.forwarded], [7, 7, 0]);
      assert.ok(s.oldestAgeSeconds !== null && s.oldestAgeSeconds >= 0);
      assert.is(await metric('agentbus_spool_events'), 7);
      assert.is(await metric('agentbus_spool_spooled_total'), 7);

      // Bounded: past maxBytes a publish rejects naming the limit; what fit stays spooled.
      assert.ok((await small.publishDetailed(big, { pad: 'x'.repeat(700) })).spooled);
      await rejects(() => small.publish(big, { pad: 'x'.repeat(700) }), 'SPOOL_FULL', 'maxBytes 2048', 'spool.maxBytes', 'nothing was stored');
      assert.is(small.spool!.stats().events, 1);

      await up();
      await waitFor('the spool forwarded everything', () => spoolEmpty(bus) && spoolEmpty(small), 30_000, 50);
      const after = await bus.publishDetailed(a, { n: 5 });
      assert.is(after.spooled, false, 'with the spool empty and Redis back, publishes go to Redis');

      const inA = await stored(bus, a);
      assert.equal(inA.map((e) => e.n), [0, 1, 2, 3, 4, 5], 'topic a: every event once, in publish order');
      assert.equal(inA.slice(1, 4).map((e) => e.id), [one.id, batch[0]!.id, batch[2]!.id], 'ids kept');
      const inB = await stored(bus, b);
      assert.equal(inB.map((e) => e.id), [batch[1]!.id, 'caller-id-1']);
      await waitFor('the delayed event is moved into its topic when due', async () => (await stored(bus, c)).length === 1, 30_000, 50);
      assert.equal((await stored(bus, c))[0]!.id, later.id);

      assert.is(await metric('agentbus_spool_forwarded_total'), 7);
      assert.is(await metric('agentbus_spool_events'), 0);
      assert.is(await metric('agentbus_spool_oldest_age_seconds'), 0);
      const warns = lines.filter((l) => l.level === 40 && l.msg.includes('spooling publishes'));
      const infos = lines.filter((l) => l.level === 30 && l.msg.startsWith('spool empty again'));
      assert.is(warns.length, 1, 'one warning when spooling starts');
      assert.is(infos.length, 1, 'one info line when the spool is empty again');
      assert.match(infos[0]!.msg, '7 event(s) forwarded');
    } finally {
      await up();
      await small.close();
      await bus.close();
    }
  });

  test('a publisher process SIGKILLed with events spooled loses none: a new process with the same spool path forwards them all, in order, once', async () => {
    const path = join(dir(), 'spool.db');
    const topic = uniq('spool.kill');
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/spool/publisher.ts'], {
      env: { ...process.env, REDIS_URL: server.url, AGENTBUS_SPOOL_PATH: path, SPOOL_TOPIC: topic },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const printed: Array<{ n: number; id: string; spooled: boolean }> = [];
    let ready = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') ready = true;
      const m = /^(spooled|stored) (\d+) (\S+)$/.exec(line);
      if (m) printed.push({ spooled: m[1] === 'spooled', n: Number(m[2]), id: m[3]! });
    });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await waitFor('the publisher connected', () => ready, 30_000, 20);
      await stop();
      child.stdin!.write('go\n');
      // The kill hits while the child is in its publish loop: at least 50 publishes resolved spooled
      // (committed to the spool file), the next one in flight (maybe mid-transaction).
      await waitFor('50 publishes resolved spooled', () => printed.length >= 50, 30_000, 5);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    assert.ok(printed.every((p) => p.spooled), 'every publish during the outage resolved spooled');

    await up();
    const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }), spool: { path } });
    try {
      await waitFor('the new process forwarded the spool', () => spoolEmpty(bus), 30_000, 50);
      const got = await stored(bus, topic);
      assert.ok(got.length >= printed.length, `${got.length} stored, ${printed.length} reported spooled`);
      assert.equal(got.map((e) => e.n), got.map((_, i) => i), 'every event once, in publish order');
      assert.equal(got.slice(0, printed.length).map((e) => e.id), printed.map((p) => p.id), 'with the ids the publishes resolved with');
    } finally {
      await bus.close();
    }
  });

  test('an event forwarded, then the forwarder killed before deleting it from the spool, is forwarded again and stored once (dedup)', async () => {
    const path = join(dir(), 'spool.db');
    const copy = join(dir(), 'forwarded-not-deleted.db');
    const topic = uniq('spool.again');
    const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }), spool: { path } });
    let again: Bus | null = null;
    try {
      await stop();
      const ids = (await bus.publishBatchDetailed([0, 1, 2, 3, 4].map((n) => ({ type: topic, data: { n } })))).map((r) => r.id);
      // The spool as it is now, copied: what a forwarder killed after Redis confirmed these events and
      // before it deleted them leaves on disk.
      const db = new Database(path);
      db.exec(`VACUUM INTO '${copy}'`);
      db.close();
      await up();
      await waitFor('forwarded and deleted', () => spoolEmpty(bus), 30_000, 50);
      assert.equal((await stored(bus, topic)).map((e) => e.id), ids);

      again = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }), spool: { path: copy } });
      assert.is(again.spool!.stats().events + again.spool!.stats().forwarded, 5, 'the copy holds the 5 forwarded events');
      await waitFor('forwarded again', () => spoolEmpty(again!), 30_000, 50);
      assert.is(again.spool!.stats().forwarded, 5);
      assert.equal((await stored(bus, topic)).map((e) => e.id), ids, 'stored once: the second forward was deduplicated');
    } finally {
      await up();
      await again?.close();
      await bus.close();
    }
  });

  test('while a topic has events spooled, its new publishes go to the spool behind them even with Redis back; other topics go to Redis', async () => {
    const { lines, logger } = captured();
    const bus = await createRedisBus({ url: server.url, logger, spool: { path: join(dir(), 'spool.db') } });
    const [held, other] = [uniq('spool.held'), uniq('spool.other')];
    const raw = new Redis(server.url).on('error', () => {});
    try {
      // The topic's key is a string (AOF keeps it through the restart): Redis refuses the forward, the event stays spooled.
      await raw.set(`events:${held}`, 'not a stream');
      await stop();
      assert.ok((await bus.publishDetailed(held, { n: 0 })).spooled);
      await up();
      await waitFor('the forward refused', () => lines.some((l) => l.level === 50 && l.msg.startsWith('Redis refused events forwarded')), 30_000, 20);
      assert.equal(await bus.publishDetailed(held, { n: 1 }).then((r) => r.spooled), true, 'behind the spooled event of its topic');
      assert.equal(await bus.publishDetailed(other, { n: 0 }).then((r) => r.spooled), false, 'another topic goes to Redis, which answers');
      await raw.del(`events:${held}`);
      await waitFor('forwarded once the key is a stream again', () => spoolEmpty(bus), 30_000, 50);
      assert.equal((await stored(bus, held)).map((e) => e.n), [0, 1], 'in publish order');
    } finally {
      raw.disconnect();
      await up();
      await bus.close();
    }
  });

  test('a publish Redis does not answer within timeoutMs (a hung server) is spooled; with its own id it is stored once, although the timed-out append ran later', async () => {
    const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }), spool: { path: join(dir(), 'spool.db'), timeoutMs: 300 } });
    const topic = uniq('spool.hung');
    const raw = new Redis(server.url);
    try {
      const hung = raw.call('DEBUG', 'SLEEP', '3'); // the server answers nothing for 3 s
      await sleep(300); // DEBUG SLEEP is under way
      const r = await bus.publishDetailed(topic, { n: 0 }, { id: 'hung-1' });
      assert.equal(r, { id: 'hung-1', spooled: true });
      await hung;
      await waitFor('forwarded', () => spoolEmpty(bus), 30_000, 50);
      assert.equal((await stored(bus, topic)).map((e) => e.id), ['hung-1'], 'the append that timed out stored it; the forward was deduplicated');
    } finally {
      raw.disconnect();
      await bus.close();
    }
  });

  /** A publisher process (test/fixtures/spool/publisher.ts) on `url` and `path`; its stdout lines as they come. */
  function publisher(url: string, path: string, topics: string) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/spool/publisher.ts'], {
      env: { ...process.env, REDIS_URL: url, AGENTBUS_SPOOL_PATH: path, SPOOL_TOPIC: topics },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += String(d)));
    createInterface({ input: child.stdout! }).on('line', (l) => void lines.push(l));
    let exited = false;
    const exit = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
    /** Waits for a line `pred` accepts, failing at once if the process exited (its stderr said why). */
    const line = async (what: string, pred: (l: string) => boolean, from = 0) => {
      await waitFor(what, () => {
        if (exited) assert.unreachable(`the publisher exited while waiting for ${what}: ${stderr}`);
        return lines.slice(from).some(pred);
      }, 30_000, 20);
      return lines.slice(from).find(pred)!;
    };
    return {
      ready: () => line('ready', (l) => l === 'ready'),
      /** Publishes `count` events from `from`; resolves what each resolved with. */
      async publish(from: number, count: number) {
        const at = lines.length;
        child.stdin!.write(`publish ${from} ${count}\n`);
        await line(`${count} publishes`, (l) => l === 'published', at);
        return lines.slice(at).flatMap((l) => {
          const m = /^(spooled|stored) (\d+) (\S+)$/.exec(l);
          return m ? [{ spooled: m[1] === 'spooled', n: Number(m[2]), id: m[3]! }] : [];
        });
      },
      /** CPU ms the process used over the next `ms` ms. */
      async cpu(ms: number) {
        const at = lines.length;
        child.stdin!.write(`cpu ${ms}\n`);
        return Number((await line('cpu', (l) => l.startsWith('cpu '), at)).slice(4));
      },
      async kill() {
        child.kill('SIGKILL');
        await exit;
      },
    };
  }

  test('a publisher started while Redis is down spools; SIGKILLed and restarted while Redis is still down, it spools more; once Redis starts, every event is in Redis once, in order per topic, with its id', async () => {
    const srv = await startRedisServer(['--appendonly', 'yes']);
    await srv.stop();
    const path = join(dir(), 'spool.db');
    const [t0, t1] = [uniq('spool.cold.a'), uniq('spool.cold.b')];
    const [N, M] = [40, 30];
    let second: ReturnType<typeof publisher> | null = null;
    let bus: Bus | null = null;
    try {
      const first = publisher(srv.url, path, `${t0},${t1}`);
      await first.ready();
      const before = await first.publish(0, N);
      await first.kill();
      second = publisher(srv.url, path, `${t0},${t1}`);
      await second.ready();
      const after = await second.publish(N, M);
      const all = [...before, ...after];
      assert.is(all.length, N + M);
      assert.ok(all.every((p) => p.spooled), 'every publish while Redis is down resolved spooled');
      // Waiting for Redis burns no CPU: reconnects and the forwarder's retries are seconds apart.
      const cpu = await second.cpu(3000);
      assert.ok(cpu < 1500, `the publisher used ${cpu} ms of CPU in 3 s while waiting for Redis`);

      await srv.start();
      bus = await createRedisBus({ url: srv.url, logger: pino({ level: 'silent' }), spool: false });
      const b = bus;
      await waitFor('every event forwarded', async () => (await stored(b, t0)).length + (await stored(b, t1)).length >= N + M, 30_000, 50);
      for (const [i, t] of [t0, t1].entries()) {
        const want = all.filter((p) => p.n % 2 === i);
        const got = await stored(b, t);
        assert.equal(got.map((e) => e.n), want.map((p) => p.n), `topic ${i}: every event once, in publish order`);
        assert.equal(got.map((e) => e.id), want.map((p) => p.id), `topic ${i}: with the ids the publishes resolved with`);
      }
    } finally {
      await second?.kill();
      await bus?.close();
      await srv.stop();
    }
  });

  test('with a spool a bus starts while Redis is down (without one it still fails, naming the target): one warning without the password, publishes spooled, subscribe resolves, other calls fail with CONNECTION_FAILED; once Redis answers the subscription gets every spooled event', async () => {
    const secret = 'Sp00l-s3cr3t';
    const srv = await startRedisServer(['--requirepass', secret], { password: secret });
    await srv.stop();
    const target = `127.0.0.1:${srv.port}`;
    await rejects(() => createRedisBus({ url: srv.url, connectTimeoutMs: 1000, logger: pino({ level: 'silent' }), spool: false }), 'CONNECTION_FAILED', target);

    const { lines, logger } = captured();
    const bus = await createRedisBus({ url: srv.url, connectTimeoutMs: 1000, logger, spool: { path: join(dir(), 'spool.db') } });
    const topic = uniq('spool.cold');
    try {
      const warns = () => lines.filter((l) => l.level === 40);
      assert.is(warns().length, 1, `one warning: ${JSON.stringify(warns())}`);
      assert.match(warns()[0]!.msg, target);
      const spooled = [await bus.publishDetailed(topic, { n: 0 }), ...(await bus.publishBatchDetailed([{ type: topic, data: { n: 1 } }, { type: topic, data: { n: 2 } }]))];
      assert.equal(spooled.map((r) => r.spooled), [true, true, true]);
      for (const call of [() => bus.stats(), () => bus.ping(), () => bus.replay({ types: [topic] }, () => {}), () => bus.deadLetters.list()]) {
        await rejects(call, 'CONNECTION_FAILED', target, 'has not answered since the bus started');
      }
      // subscribe resolves at once (its consumer starts once Redis answers, before the spool is
      // forwarded: a new group at 'latest' gets what was spooled meanwhile); bad options still reject.
      await rejects(() => bus.subscribe({ group: '', types: [topic] }, () => {}), 'INVALID_OPTION', 'group');
      const got: string[] = [];
      const sub = await bus.subscribe({ group: 'g', types: [topic] }, (e) => void got.push(e.id));
      assert.is(sub.group, 'g');
      const spooledLater = await bus.publishDetailed(topic, { n: 3 });
      assert.ok(spooledLater.spooled);
      // A pattern subscription lists topics when it starts (on the publish connection, which may
      // still be reconnecting when Redis first answers): it too gets what was spooled.
      const byPattern: string[] = [];
      await bus.subscribe({ group: 'gp', types: [`${topic}.*`] }, (e) => void byPattern.push(e.id));
      const spooledSub = await bus.publishDetailed(`${topic}.sub`, { n: 0 });
      assert.ok(spooledSub.spooled);
      const cpu = process.cpuUsage();
      await sleep(3000); // the reconnects (up to 2 s apart) go on meanwhile
      const used = process.cpuUsage(cpu);
      assert.ok((used.user + used.system) / 1000 < 1500, `${(used.user + used.system) / 1000} ms of CPU in 3 s while waiting for Redis`);
      assert.is(got.length, 0);
      assert.is(warns().length, 1, 'the reconnects log no further warning');

      await srv.start();
      await waitFor('the subscriber got every spooled event', () => got.length === 4, 30_000, 20);
      assert.equal(got, [...spooled, spooledLater].map((r) => r.id));
      await waitFor('the pattern subscriber got its spooled event', () => byPattern.length === 1, 30_000, 20);
      assert.equal(byPattern, [spooledSub.id]);
      assert.ok(spoolEmpty(bus));
      assert.is((await bus.publishDetailed(topic, { n: 4 })).spooled, false, 'Redis is back: publishes go to it');
      await waitFor('delivered from Redis', () => got.length === 5, 30_000, 20);
      await sub.close();
      const text = JSON.stringify(lines);
      assert.not.ok(text.includes(secret), 'no password in the log');
      // Redis answering, a refusal still fails at start, spool or not.
      await rejects(() => createRedisBus({ url: srv.url.replace(secret, 'wrong'), connectTimeoutMs: 1000, logger: pino({ level: 'silent' }), spool: { path: join(dir(), 'spool.db') } }), 'CONNECTION_FAILED', target, 'WRONGPASS');
    } finally {
      await bus.close();
      await srv.stop();
    }
  });

  test('a bus started while Redis was down runs the start checks when it answers: a refused server (allkeys-lru) gets nothing from the spool, publishes to it are refused; once the policy is fixed the spool is forwarded', async () => {
    const srv = await startRedisServer(['--maxmemory-policy', 'allkeys-lru']);
    await srv.stop();
    const { lines, logger } = captured();
    const bus = await createRedisBus({ url: srv.url, connectTimeoutMs: 1000, logger, spool: { path: join(dir(), 'spool.db') } });
    const [topic, other] = [uniq('spool.refused'), uniq('spool.refused.other')];
    const raw = new Redis(srv.url, { lazyConnect: true }).on('error', () => {});
    try {
      const ids = (await bus.publishBatchDetailed([0, 1, 2].map((n) => ({ type: topic, data: { n } })))).map((r) => r.id);
      await srv.start();
      await waitFor('the start checks refused the server', () => lines.some((l) => l.level === 50 && l.msg.includes('failed the start checks')), 30_000, 20);
      await waitFor('the forwarder was refused', () => lines.some((l) => l.level === 50 && l.msg.startsWith('Redis refused events forwarded')), 30_000, 20);
      await raw.connect();
      assert.is(await raw.exists(`events:${topic}`), 0, 'nothing forwarded to a refused server');
      assert.is(bus.spool!.stats().events, 3, 'the spool keeps its events');
      await rejects(() => bus.publish(other, {}), 'UNSAFE_STORE_CONFIG', 'allkeys-lru');
      assert.is((await bus.publishDetailed(topic, { n: 3 })).spooled, true, 'behind its topic in the spool');
      await rejects(() => bus.stats(), 'UNSAFE_STORE_CONFIG');
      await sleep(2500); // the forwarder and the publishes above asked for the checks again meanwhile
      const errors = lines.filter((l) => l.level === 50).map((l) => l.msg);
      assert.is(errors.filter((m) => m.startsWith('redis eviction-policy')).length, 1, `the refused policy logged once: ${errors.join('\n')}`);
      assert.is(errors.filter((m) => m.includes('failed the start checks')).length, 1, 'the refusal logged once');

      await raw.config('SET', 'maxmemory-policy', 'noeviction');
      await waitFor('forwarded once the policy is safe', () => spoolEmpty(bus), 30_000, 50);
      assert.equal((await stored(bus, topic)).map((e) => e.n), [0, 1, 2, 3]);
      assert.equal((await stored(bus, topic)).slice(0, 3).map((e) => e.id), ids);
    } finally {
      raw.disconnect();
      await bus.close();
      await srv.stop();
    }
  });

  test('a server that takes connections but answers nothing within connectTimeoutMs counts as unreachable at start: a bus with a spool starts and spools', async () => {
    const sockets = new Set<Socket>();
    const mute = createServer((sock) => void sockets.add(sock.on('error', () => {}))); // reads, never answers
    const port = await new Promise<number>((r) => mute.listen(0, '127.0.0.1', () => r((mute.address() as AddressInfo).port)));
    const { lines, logger } = captured();
    const t0 = Date.now();
    const bus = await createRedisBus({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 500, logger, spool: { path: join(dir(), 'spool.db') } });
    try {
      assert.ok(Date.now() - t0 < 10_000, `started after ${Date.now() - t0} ms`);
      assert.match(lines.find((l) => l.level === 40)!.msg, 'no answer within 500 ms');
      assert.ok((await bus.publishDetailed(uniq('spool.mute'), { n: 0 })).spooled);
    } finally {
      await bus.close();
      for (const s of sockets) s.destroy();
      mute.close();
    }
  });

  test('a bus started while Redis was down whose Redis comes back refusing its password logs that once as an error (no password) and keeps spooling', async () => {
    const secret = 'R1ght-s3cr3t';
    const srv = await startRedisServer(['--requirepass', secret], { password: secret });
    await srv.stop();
    const { lines, logger } = captured();
    const wrong = 'Wr0ng-s3cr3t';
    const bus = await createRedisBus({ url: srv.url.replace(secret, wrong), connectTimeoutMs: 1000, logger, spool: { path: join(dir(), 'spool.db') } });
    const topic = uniq('spool.wrongpass');
    try {
      assert.ok((await bus.publishDetailed(topic, { n: 0 })).spooled);
      await srv.start();
      await waitFor('the refusal logged', () => lines.some((l) => l.level === 50 && l.msg.includes('refuses the connection')), 30_000, 20);
      await sleep(2500); // reconnects go on, refused each time
      assert.is(lines.filter((l) => l.level === 50 && l.msg.includes('refuses the connection')).length, 1, 'logged once');
      assert.match(lines.find((l) => l.level === 50)!.msg, 'WRONGPASS');
      assert.ok((await bus.publishDetailed(topic, { n: 1 })).spooled, 'publishes stay spooled');
      assert.is(bus.spool!.stats().events, 2);
      const text = JSON.stringify(lines);
      assert.not.ok(text.includes(wrong) || text.includes(secret), 'no password in the log');
    } finally {
      await bus.close();
      await srv.stop();
    }
  });

  test('agentbus start with a spool while Redis is down: the host serves (not ready: store unreachable), its agent handles what a producer spooled meanwhile once Redis starts, SIGTERM exits 0', async () => {
    const srv = await startRedisServer();
    await srv.stop();
    const type = uniq('spool.host');
    const work = join(dir(), 'work.log');
    const host = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli.ts', 'start', '--agents', 'test/fixtures/agents/work.ts'], {
      env: { ...process.env, AGENTBUS_ADAPTER: 'redis', REDIS_URL: srv.url, AGENTBUS_SPOOL_PATH: join(dir(), 'host.db'), AGENTBUS_HTTP_PORT: '0', LOG_LEVEL: 'info', WORK_TYPE: type, WORK_LOG: work, WORK_HANDLER_MS: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: string[] = [];
    createInterface({ input: host.stdout! }).on('line', (l) => void out.push(l));
    createInterface({ input: host.stderr! }).on('line', (l) => void out.push(l));
    const exited = new Promise<number | null>((r) => host.once('exit', (code) => r(code)));
    let producer: Bus | null = null;
    try {
      await waitFor('host running', () => {
        if (host.exitCode !== null) assert.unreachable(`the host exited ${host.exitCode}:\n${out.join('\n')}`);
        return out.some((l) => l.includes('host running'));
      }, 30_000, 20);
      const url = (JSON.parse(out.find((l) => l.includes('host running'))!) as { url: string }).url;
      const unready = await fetch(`${url}/readyz`);
      assert.is(unready.status, 503);
      assert.match(await unready.text(), 'store unreachable');
      producer = await createRedisBus({ url: srv.url, logger: pino({ level: 'silent' }), spool: { path: join(dir(), 'producer.db') } });
      const sent = await producer.publishBatchDetailed([0, 1, 2].map((n) => ({ type, data: { n } })));
      assert.ok(sent.every((r) => r.spooled));

      await srv.start();
      await waitFor('the agent handled every event', () => workLog(work).dones.size === 3, 30_000, 50);
      assert.equal([...workLog(work).dones.keys()].sort(), sent.map((r) => r.id).sort());
      await waitFor('ready', async () => (await fetch(`${url}/readyz`)).status === 200, 30_000, 100);
      host.kill('SIGTERM');
      assert.is(await exited, 0, out.join('\n'));
    } finally {
      host.kill('SIGKILL');
      await producer?.close();
      await srv.stop();
    }
  });

  test('one bus per spool path; spool options are checked', async () => {
    const path = join(dir(), 'spool.db');
    const bus = await createRedisBus({ url: server.url, logger: pino({ level: 'silent' }), spool: { path } });
    try {
      await rejects(() => createRedisBus({ url: server.url, logger: pino({ level: 'silent' }), spool: { path } }), 'CONNECTION_FAILED', 'in use by another bus of this process');
      // The CLI's commands take no spool, so one run beside a host holding it works.
      const cli = spawnSync(process.execPath, ['--import', 'tsx', 'runtime/cli.ts', 'stats'], {
        encoding: 'utf8',
        env: { ...process.env, AGENTBUS_ADAPTER: 'redis', REDIS_URL: server.url, AGENTBUS_SPOOL_PATH: path },
      });
      assert.is(cli.status, 0, `agentbus stats beside a held spool: ${cli.stderr}`);
    } finally {
      await bus.close();
    }
    await rejects(() => createRedisBus({ url: server.url, spool: { path, maxBytes: 10 } }), 'INVALID_OPTION', 'spool.maxBytes', '10');
    await rejects(() => createRedisBus({ url: server.url, spool: { path, nope: 1 } as never }), 'INVALID_OPTION', 'unknown spool option "nope"');
    await rejects(() => createRedisBus({ url: server.url, spool: { path: ':memory:' } }), 'INVALID_OPTION', 'spool.path');
  });

  test.run();
}
