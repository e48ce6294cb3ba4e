// Store pressure against real stores this file sets up: a redis-server at its maxmemory under
// noeviction, SQLite on a small tmpfs filled to the last byte, a WAL held open by a reader.
// What is checked: publishes refused with the store's error, nothing resolved lost, /readyz 503
// with the reason and 200 again once the store takes writes, the gauges, the warnings (once each).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentHost, BaseAgent, serveHttp, type Bus, type CloudEvent } from '../index.js';
import { createRedisBus } from '../adapters/redis/index.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { PressureWatch } from '../bus/pressure.js';
import { assertSameIds, uniq, waitFor } from './helpers/index.js';
import { hasRedisServer, startRedisCluster, startRedisServer } from './helpers/redis.js';

interface Rec {
  level: number;
  msg: string;
  pressure?: string;
  reason?: string;
}

/** A logger keeping every record, parsed. */
function capture() {
  const recs: Rec[] = [];
  return { recs, logger: pino({ level: 'debug' }, { write: (s: string) => void recs.push(JSON.parse(s)) }) };
}
const warned = (recs: Rec[], prefix: string) => recs.filter((r) => r.level === 40 && r.pressure?.startsWith(prefix));

/** A host with one agent recording the ids it handles (after `gate`), served over HTTP. */
async function hostOn(bus: Bus, type: string, logger: pino.Logger, gate: Promise<void> = Promise.resolve()) {
  const got: string[] = [];
  class Sink extends BaseAgent {
    static subscriptions = [type];
    async handle(e: CloudEvent) {
      await gate;
      got.push(e.id);
    }
  }
  const host = new AgentHost({ bus, agents: [Sink], logger });
  await host.start();
  const http = await serveHttp(host, 0);
  const readyz = async () => {
    const r = await fetch(`${http.url}/readyz`);
    return { status: r.status, text: await r.text() };
  };
  const metrics = async () => {
    const text = await (await fetch(`${http.url}/metrics`)).text();
    return (name: string) => {
      const v = text.split('\n').find((l) => l.startsWith(`${name} `));
      return v === undefined ? undefined : Number(v.split(' ').pop());
    };
  };
  const stop = async () => {
    http.server.close();
    await host.stop();
  };
  return { got, host, readyz, metrics, stop };
}

const pad = (n: number) => 'x'.repeat(n);

const unit = suite('pressure: warnings');

unit('each warning is logged once per repeat period and once when it clears; a refusal once each way', () => {
  const { recs, logger } = capture();
  const watch = new PressureWatch(logger, 60_000);
  const h = (refused: string | null, keys: string[]) => ({ refused, warnings: keys.map((key) => ({ key, message: `warn ${key}` })), topics: [] });
  watch.observe(h(null, ['a']));
  watch.observe(h(null, ['a', 'b']));
  watch.observe(h('OOM x', ['a', 'b']));
  watch.observe(h('OOM x', ['b']));
  watch.observe(h(null, []));
  assert.equal(
    recs.map((r) => `${r.level} ${r.msg}`),
    [
      '40 warn a',
      '40 warn b',
      '40 store refuses writes: OOM x (publishes fail; /readyz is 503 until it accepts them)',
      '30 store pressure cleared: a',
      '30 store pressure cleared: b',
      '30 store accepts writes again',
    ],
  );
});

unit.run();

const redisSuite = suite('pressure: Redis at maxmemory (noeviction)');

if (hasRedisServer()) {
  redisSuite('publishes fail with OOM, none resolved is lost, consumers drain; /readyz 503 naming OOM; gauges; one 80% warning; after a trim publishing works and /readyz is 200', async () => {
    const server = await startRedisServer(['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction']);
    const admin = new Redis(server.url);
    const { recs, logger } = capture();
    const bus = await createRedisBus({ url: server.url, logger });
    const type = uniq('pressure.redis');
    // The consumer holds its first deliveries until the store is full: memory stays where the
    // refused publish left it while readiness and metrics are checked (acknowledgements free a little).
    let open!: () => void;
    const h = await hostOn(bus, type, logger, new Promise<void>((r) => (open = r)));
    try {
      assert.is((await h.readyz()).status, 200);

      const resolved: string[] = [];
      let refusal = null as Error | null;
      for (let i = 0; i < 5000 && refusal === null; i++) {
        await bus.publish(type, { pad: pad(2000) }).then((id) => void resolved.push(id), (err: Error) => void (refusal = err));
      }
      assert.ok(refusal, 'a publish was refused before 10 MB went into a 2 MB Redis');
      assert.match(refusal.message, /^OOM command not allowed/, 'the store error is passed on');

      const r = await h.readyz();
      assert.is(r.status, 503, r.text);
      assert.match(r.text, /store refuses writes: OOM command not allowed/);

      const node = `127.0.0.1:${server.port}`;
      const m = await h.metrics();
      assert.is(m(`agentbus_redis_maxmemory_bytes{node="${node}"}`), 2 * 1024 ** 2);
      assert.ok(m(`agentbus_redis_used_memory_bytes{node="${node}"}`)! > 0.8 * 2 * 1024 ** 2);
      assert.ok(m(`agentbus_redis_memory_ratio{node="${node}"}`)! >= 0.8);
      assert.is(m(`agentbus_redis_evicted_keys{node="${node}"}`), 0, 'noeviction evicts nothing');
      assert.is(m('agentbus_store_writable'), 0);
      assert.ok(m(`agentbus_topic_length{type="${type}"}`)! >= resolved.length);
      assert.ok(m(`agentbus_topic_bytes{type="${type}"}`)! > resolved.length * 1000, `MEMORY USAGE of the stream: ${m(`agentbus_topic_bytes{type="${type}"}`)}`);
      for (let i = 0; i < 3; i++) await h.readyz(); // more readings: still one warning
      assert.is(warned(recs, `redis-memory:${node}`).length, 1, JSON.stringify(warned(recs, 'redis-memory')));
      assert.match(warned(recs, `redis-memory:${node}`)[0].msg, /past 80%.*noeviction, at maxmemory every publish fails with OOM/);
      assert.is(warned(recs, 'refused').length, 1);

      // Consumers go on at maxmemory: every resolved publish is delivered and acknowledged.
      open();
      await waitFor('every resolved publish delivered', () => resolved.every((id) => h.got.includes(id)), 20_000);
      assertSameIds([...new Set(h.got)].filter((id) => resolved.includes(id)), resolved, 'delivered of resolved');
      await waitFor('the group drained', async () => (await bus.stats()).find((t) => t.type === type)!.groups.every((g) => g.pending === 0 && g.lag === 0));

      // Drained, trimmed, the limit lifted: Redis takes writes again, found by the readiness probe
      // with no publish. (A trim alone leaves used_memory around 80% of this tiny 2 MB limit.)
      await admin.xtrim(`events:${type}`, 'MAXLEN', 0);
      await admin.config('SET', 'maxmemory', '0');
      await waitFor('/readyz 200 after the trim', async () => (await h.readyz()).status === 200, 10_000, 100);
      assert.ok(recs.some((x) => x.level === 30 && x.msg === 'store accepts writes again'));
      assert.ok(recs.some((x) => x.level === 30 && x.msg === `store pressure cleared: redis-memory:${node}`));
      const after = await bus.publish(type, { n: 1 });
      await waitFor('the publish after recovery delivered', () => h.got.includes(after));
      await waitFor('agentbus_store_writable 1 (a scrape reuses values for 1 s)', async () => (await h.metrics())('agentbus_store_writable') === 1, 5000, 200);
    } finally {
      open();
      await h.stop();
      await bus.close();
      admin.disconnect();
      await server.stop();
    }
  });

  redisSuite('on a Cluster: memory per master, labelled by node; topic sizes from the master holding each stream', async () => {
    const cluster = await startRedisCluster(3);
    const bus = await createRedisBus({ cluster: cluster.nodes.map((n) => `${n.host}:${n.port}`), logger: pino({ level: 'silent' }) });
    try {
      const types = [uniq('pressure.a'), uniq('pressure.b'), uniq('pressure.c')];
      for (const t of types) await bus.publish(t, { pad: pad(1000) });
      const h = await bus.health!({ topics: types });
      assert.equal(h.memory!.map((m) => m.node).sort(), cluster.nodes.map((n) => `${n.host}:${n.port}`).sort());
      for (const m of h.memory!) assert.ok(m.usedBytes > 0 && m.maxBytes === 0 && m.evictedKeys === 0, JSON.stringify(m));
      assert.equal(h.topics.map((t) => t.type), types);
      for (const t of h.topics) assert.ok(t.bytes > 1000, JSON.stringify(t));
      assert.is(h.refused, null);
    } finally {
      await bus.close();
      await cluster.stop();
    }
  });
} else {
  redisSuite.skip('no redis-server on PATH', () => {});
}

redisSuite.run();

const disk = suite('pressure: SQLite on a full disk');

/** A small tmpfs of its own (root only), or null where mounting is not permitted; gone when the process exits. */
function smallDisk(bytes: number): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'agentbus-full-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  // Lazily: detached at once even while a file on it is still open.
  process.once('exit', () => {
    spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** `agentbus doctor` on the file, as a user runs it. */
function doctor(path: string): Promise<{ code: number | null; out: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(REDIS_|AGENTBUS_)/.test(k)));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli.ts', 'doctor', '--strict'], { env: { ...env, AGENTBUS_SQLITE_PATH: path } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

const MiB = 1024 ** 2;
const mounted = smallDisk(8 * MiB);

if (mounted) {
  disk('disk full: publishes fail with SQLITE_FULL, /readyz 503 naming it, disk gauges and warning, doctor warns; space freed: ready again, nothing resolved lost', async () => {
    const dir = mounted;
    const path = join(dir, 'agentbus.db');
    let stop = async () => {};
    try {
      writeFileSync(join(dir, 'filler'), Buffer.alloc(5 * MiB));
      const { recs, logger } = capture();
      const bus = await createSqliteBus({ path, logger });
      const type = uniq('pressure.disk');
      const h = await hostOn(bus, type, logger);
      stop = async () => {
        await h.stop();
        await bus.close();
      };
      assert.is((await h.readyz()).status, 200);

      const resolved: string[] = [];
      let refusal = null as (Error & { code?: string }) | null;
      for (let i = 0; i < 1000 && refusal === null; i++) {
        await bus.publishBatch(Array.from({ length: 4 }, () => ({ type, data: { pad: pad(16_000) } }))).then((ids) => void resolved.push(...ids), (err: Error) => void (refusal = err));
      }
      assert.ok(refusal, 'the disk filled up');
      assert.is(refusal.code, 'SQLITE_FULL', refusal.message);

      const r = await h.readyz();
      assert.is(r.status, 503, r.text);
      assert.match(r.text, /store refuses writes: SQLITE_FULL/);
      const m = await h.metrics();
      assert.ok(m('agentbus_sqlite_disk_free_bytes')! < 0.1 * 8 * MiB, `free ${m('agentbus_sqlite_disk_free_bytes')}`);
      assert.is(m('agentbus_sqlite_disk_total_bytes'), 8 * MiB);
      assert.ok(m('agentbus_sqlite_file_bytes')! + m('agentbus_sqlite_wal_bytes')! > MiB);
      assert.is(m('agentbus_store_writable'), 0);
      assert.ok(m(`agentbus_topic_bytes{type="${type}"}`)! >= resolved.length * 16_000, `topic bytes ${m(`agentbus_topic_bytes{type="${type}"}`)}`);
      assert.is(warned(recs, `disk:${dir}`).length, 1, 'the low disk is a warning, once');
      assert.match(warned(recs, `disk:${dir}`)[0].msg, /free of 8\.0 MiB under .* \(below 819\.2 KiB\)/);

      const d = await doctor(path);
      assert.is(d.code, 2, d.out);
      assert.match(d.out, /disk-space\s+warn\s+.* free of 8\.0 MiB under .*\(below 819\.2 KiB\)/);

      rmSync(join(dir, 'filler'));
      await waitFor('/readyz 200 once space is free', async () => (await h.readyz()).status === 200, 10_000, 100);
      assert.ok(recs.some((x) => x.level === 30 && x.msg === 'store accepts writes again'));
      assert.ok(recs.some((x) => x.level === 30 && x.msg === `store pressure cleared: disk:${dir}`));
      resolved.push(await bus.publish(type, { n: 1 }));
      await waitFor('every resolved publish delivered', () => resolved.every((id) => h.got.includes(id)), 20_000);
      assertSameIds([...new Set(h.got)].filter((id) => resolved.includes(id)), resolved, 'delivered of resolved');
    } finally {
      await stop();
    }
  });
} else {
  disk.skip('mount -t tmpfs is not permitted here (not root?): the disk-full scenario needs a small file system', () => {});
}

disk('a reader holding a snapshot keeps the WAL from being checkpointed: a warning past walWarnBytes, cleared once the reader lets go', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentbus-wal-'));
  const path = join(dir, 'wal.db');
  const { recs, logger } = capture();
  const bus = await createSqliteBus({ path, logger, walWarnBytes: 8 * MiB });
  const type = uniq('pressure.wal');
  const batch = () => bus.publishBatch(Array.from({ length: 50 }, () => ({ type, data: { pad: pad(16_000) } })));
  await batch();
  assert.not.ok((await bus.health!()).warnings.length, 'checkpoints keep the WAL small without a reader');

  const reader = new Database(path, { readonly: true });
  reader.exec('BEGIN');
  reader.prepare('SELECT COUNT(*) FROM events').get(); // the snapshot is taken now and held
  for (let i = 0; i < 15; i++) await batch(); // ~12 MiB
  const h = await bus.health!();
  assert.ok(h.disk!.walBytes > 8 * MiB, `wal ${h.disk!.walBytes}`);
  assert.equal(h.warnings.map((w) => w.key), [`wal:${path}`]);
  assert.is(warned(recs, 'wal:').length, 1);
  assert.match(warned(recs, 'wal:')[0].msg, /WAL .*wal\.db-wal is .* MiB, past 8\.0 MiB \(walWarnBytes\): a checkpoint cannot finish while a reader/);

  reader.exec('COMMIT');
  reader.close();
  await waitFor('the WAL checkpointed and cut back', async () => {
    await batch();
    return (await bus.health!()).warnings.length === 0;
  }, 20_000, 50);
  assert.ok(recs.some((x) => x.level === 30 && x.msg === `store pressure cleared: wal:${path}`));
  await bus.close();
});

disk.run();
