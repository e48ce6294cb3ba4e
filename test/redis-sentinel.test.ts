// Redis Sentinel on real processes: one master, one replica and three sentinels on loopback (see
// startRedisSentinels). The bus finds the master through the sentinels, keeps publishing and
// consuming through a SIGKILL of the master, and with `acks: 'replicated'` never acknowledges a
// publish that the failover then loses. Each scenario prints what it measured ("sentinel: ..."),
// the numbers README's Redis Sentinel section reports.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createRedisBus } from '../adapters/redis/index.js';
import type { Bus } from '../bus/contract.js';
import { createBus } from '../runtime/config.js';
import { rejects, sleep, uniq, waitFor } from './helpers/index.js';
import { hasRedisServer, startRedisSentinels, type SentinelSetup } from './helpers/redis.js';

const quiet = () => pino({ level: 'error' });
const busOn = (t: SentinelSetup, extra: Record<string, unknown> = {}) =>
  createRedisBus({ sentinels: t.sentinels, sentinelName: t.name, logger: quiet(), ...extra });

/** The sentinels name the replica's port as the master; `settled`: every one of them, none still failing over. */
async function failedOver(t: SentinelSetup, settled = false): Promise<void> {
  await waitFor('the sentinels promote the replica', async () => (await t.masterPort()) === t.replica.port, 30_000, 100);
  if (settled) await waitFor('every sentinel names the new master', () => t.settledOn(t.replica.port), 30_000, 100);
}

/** Every event id stored under `type`, read back through `bus` (a replay: no group moves). */
async function storedIds(bus: Bus, type: string): Promise<Set<string>> {
  const ids = new Set<string>();
  await bus.replay({ types: [type] }, (e) => void ids.add(e.id));
  return ids;
}

const s = suite('redis sentinel');

if (!hasRedisServer()) {
  if (process.env.AGENTBUS_REQUIRE_REDIS === '1') throw new Error('redis sentinel: no redis-server on PATH (AGENTBUS_REQUIRE_REDIS=1)');
  s.skip('redis sentinel: no redis-server on PATH', () => {});
}

/**
 * Publishing (10 events every 20 ms) and consuming through a SIGKILL of the master. With
 * `replicated` the promoted master has no replica until the old one is back (started again, made
 * a replica by the sentinels): publishes are refused (NOT_REPLICATED) meanwhile, then go on.
 */
async function liveFailover(acks: 'primary' | 'replicated'): Promise<void> {
  const t = await startRedisSentinels();
  const buses: Bus[] = [];
  let stop = false;
  let publishing: Promise<void> = Promise.resolve();
  try {
    const type = uniq(`sentinel.live.${acks}`);
    const pub = await busOn(t, { acks, ackTimeoutMs: 300 });
    const sub = await busOn(t);
    buses.push(pub, sub);
    const got = new Set<string>();
    await sub.subscribe({ group: 'g', types: [type], from: 'earliest', claimIdleMs: 1000 }, (e) => void got.add(e.id));
    const acked: string[] = [];
    const refusals = new Map<string, number>();
    let failedOverAt = 0;
    let afterFailover = 0;
    publishing = (async () => {
      for (let n = 0; !stop; n++) {
        try {
          const ids = await pub.publishBatch(Array.from({ length: 10 }, (_, i) => ({ type, data: { n: n * 10 + i } })));
          acked.push(...ids);
          if (failedOverAt) afterFailover += ids.length;
        } catch (err) {
          const code = (err as { code?: string }).code ?? (err as Error).message;
          refusals.set(code, (refusals.get(code) ?? 0) + 10);
        }
        await sleep(20);
      }
    })();
    await waitFor('events flowing', () => got.size >= 200, 20_000);
    const killedAt = Date.now();
    await t.master.stop(true);
    await failedOver(t, acks === 'replicated');
    failedOverAt = Date.now();
    // The sentinels make it a replica of the new master. It restarts empty (no persistence): before
    // every sentinel had the new configuration, that could wipe the new master (see settledOn).
    if (acks === 'replicated') await t.master.start();
    await waitFor('publishes acknowledged after the failover', () => afterFailover >= 200, 60_000);
    stop = true;
    await publishing;
    const stored = await storedIds(pub, type);
    const lost = acked.filter((id) => !stored.has(id));
    await waitFor('the consumer got every stored event', () => [...stored].every((id) => got.has(id)), 30_000);
    const refused = [...refusals].map(([code, n]) => `${n} ${code}`).join(', ') || 'none';
    console.log(`sentinel: acks ${acks}, live traffic: ${acked.length} acknowledged, refused: ${refused}, ${lost.length} acknowledged then lost, failover ${failedOverAt - killedAt} ms`);
    assert.ok(afterFailover >= 200, 'the publisher goes on after the failover');
    if (acks === 'replicated') assert.equal(lost, [], 'acknowledged, then lost');
    else assert.equal(acked.slice(-afterFailover).filter((id) => !stored.has(id)), [], 'acknowledged by the new master, then missing');
  } finally {
    // A failed assertion too: open buses would keep this file running until the runner's limit.
    stop = true;
    await publishing;
    await Promise.all(buses.map((b) => b.close().catch(() => {})));
    await t.stop();
  }
}

s("acks 'primary': a publisher and a consumer keep going through a SIGKILL of the master; what the failover lost is counted", () => liveFailover('primary'));
s("acks 'replicated': the same, refused while the new master has no replica, and nothing acknowledged is lost", () => liveFailover('replicated'));

/**
 * The window asynchronous replication leaves, made certain: the replica is stopped (SIGSTOP) and
 * its link cut on the master, 50 events are published, the master is SIGKILLed and the replica
 * resumed and promoted. What the master acknowledged in that window is on no other node.
 */
async function cutOffFailover(acks: 'primary' | 'replicated'): Promise<{ acknowledged: string[]; lost: string[]; error: unknown }> {
  const t = await startRedisSentinels();
  const type = uniq(`sentinel.${acks}`);
  const bus = await busOn(t, { acks, ackTimeoutMs: 300 });
  await bus.publish(type, { before: true }); // replicated: the replica is in sync
  const admin = await createRedisBus({ url: `redis://127.0.0.1:${t.master.port}`, logger: quiet() });
  const replicaPid = await replicaProcessId(t);
  process.kill(replicaPid, 'SIGSTOP');
  let acknowledged: string[] = [];
  let error: unknown = null;
  try {
    await rawCommand(t.master.port, ['CLIENT', 'KILL', 'TYPE', 'replica']);
    try {
      acknowledged = await bus.publishBatch(Array.from({ length: 50 }, (_, i) => ({ type, data: { i } })));
    } catch (err) {
      error = err;
    }
    await t.master.stop(true);
  } finally {
    process.kill(replicaPid, 'SIGCONT');
  }
  await admin.close().catch(() => {});
  await failedOver(t);
  const stored = await storedIds(bus, type);
  await bus.close();
  await t.stop();
  return { acknowledged, lost: acknowledged.filter((id) => !stored.has(id)), error };
}

s("acks 'primary': events the master acknowledged but had not replicated are lost in a failover", async () => {
  const r = await cutOffFailover('primary');
  console.log(`sentinel: acks primary, replica cut off: ${r.acknowledged.length} acknowledged, ${r.lost.length} of them lost`);
  assert.is(r.error, null);
  assert.is(r.acknowledged.length, 50);
  assert.is(r.lost.length, 50, 'the failover loses what only the old master had');
});

s("acks 'replicated': the same failover loses no acknowledged event; the unconfirmed publish rejects with NOT_REPLICATED", async () => {
  const r = await cutOffFailover('replicated');
  console.log(`sentinel: acks replicated, replica cut off: ${r.acknowledged.length} acknowledged, ${r.lost.length} lost, publish refused: ${(r.error as Error)?.message}`);
  assert.is((r.error as { code?: string })?.code, 'NOT_REPLICATED', inspect(r.error));
  assert.ok((r.error as Error).message.includes('0 of 1 replica(s) within 300 ms'), (r.error as Error).message);
  assert.equal(r.lost, []);
});

s('REDIS_SENTINELS + REDIS_SENTINEL_NAME with passwords for the master and the sentinels: works, and no password is logged', async () => {
  const PW = 'Mq7@k:v/9%Sx';
  const SPW = 'Sn4:tY@w-Zr8';
  const t = await startRedisSentinels({ password: PW, sentinelPassword: SPW });
  let text = '';
  const logger = pino({ level: 'debug' }, new Writable({ write: (c, _e, cb) => ((text += String(c)), cb()) }));
  const env = { AGENTBUS_ADAPTER: 'redis', REDIS_SENTINELS: t.sentinels.join(','), REDIS_SENTINEL_NAME: t.name, REDIS_PASSWORD: PW, REDIS_SENTINEL_PASSWORD: SPW };
  const bus = await createBus({ logger }, env);
  const type = uniq('sentinel.auth');
  const got: string[] = [];
  const sub = await bus.subscribe({ group: 'g', types: [type], from: 'earliest' }, (e) => void got.push(e.id));
  const id = await bus.publish(type, { n: 1 });
  await waitFor('delivered', () => got.includes(id));
  await sub.close();
  await bus.close();
  assert.ok(text.includes(`sentinel redis://${t.name} via ${t.sentinels.join(',')}/0`), text);
  // A wrong sentinel password: CONNECTION_FAILED naming the sentinels, never either password.
  const err = await rejects(() => createBus({ logger, connectTimeoutMs: 1500 }, { ...env, REDIS_SENTINEL_PASSWORD: `${SPW}x` }), 'CONNECTION_FAILED', t.sentinels[0]!);
  for (const secret of [PW, SPW, encodeURIComponent(PW), encodeURIComponent(SPW)]) {
    assert.not.ok(text.includes(secret), `a password in the log:\n${text}`);
    assert.not.ok(`${inspect(err, { depth: 10, showHidden: true })}${(err as Error).stack}`.includes(secret), `a password in the error: ${inspect(err)}`);
  }
  await rejects(() => createBus({ logger }, { ...env, REDIS_SENTINEL_NAME: '' }), 'INVALID_OPTION', 'REDIS_SENTINEL_NAME');
  await rejects(() => createRedisBus({ sentinels: ['127.0.0.1'], sentinelName: 'x' }), 'INVALID_OPTION', 'invalid sentinel "127.0.0.1"');
  await rejects(() => createRedisBus({ sentinels: t.sentinels, sentinelName: t.name, acks: 'all' as 'primary' }), 'INVALID_OPTION', 'acks "all"');
  await t.stop();
});

s('with a spool, a bus starts while no sentinel answers: publishes are spooled, then forwarded to the master they name once they answer', async () => {
  const t = await startRedisSentinels();
  const buses: Bus[] = [];
  try {
    const type = uniq('sentinel.spool');
    t.pause();
    const dir = mkdtempSync(join(tmpdir(), 'agentbus-sentinel-spool-'));
    let text = '';
    const logger = pino({ level: 'warn' }, new Writable({ write: (c, _e, cb) => ((text += String(c)), cb()) }));
    const started = Date.now();
    const pub = await busOn(t, { logger, connectTimeoutMs: 1500, spool: { path: join(dir, 'spool.db') } });
    buses.push(pub);
    const startMs = Date.now() - started;
    assert.ok(text.includes('starting anyway, with the spool'), text);
    assert.ok(text.includes(`sentinel redis://${t.name} via ${t.sentinels.join(',')}`), text);
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await pub.publishDetailed(type, { i }));
    assert.ok(sent.every((r) => r.spooled), 'spooled while no sentinel answers');
    await rejects(() => pub.replay({ types: [type] }, () => {}), 'CONNECTION_FAILED');
    t.resume();
    await waitFor('the spool forwarded everything', () => pub.spool!.stats().events === 0, 30_000, 100);
    // Read straight from the master the sentinels name: the events are there once, in order.
    const direct = await createRedisBus({ url: `redis://127.0.0.1:${await t.masterPort()}`, logger: quiet() });
    buses.push(direct);
    const ids: string[] = [];
    await direct.replay({ types: [type] }, (e) => void ids.push(e.id));
    assert.equal(ids, sent.map((r) => r.id));
    console.log(`sentinel: spool with every sentinel stopped: started in ${startMs} ms, 5 spooled, forwarded after they answered`);
  } finally {
    t.resume();
    for (const b of buses) await b.close().catch(() => {});
    await t.stop();
  }
});

/** The replica's pid, from its INFO server section. */
async function replicaProcessId(t: SentinelSetup): Promise<number> {
  const info = await rawCommand(t.replica.port, ['INFO', 'server']);
  return Number(/process_id:(\d+)/.exec(String(info))![1]);
}

async function rawCommand(port: number, args: string[]): Promise<unknown> {
  const { Redis } = await import('ioredis');
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await r.connect();
    return await r.call(args[0]!, ...args.slice(1));
  } finally {
    r.disconnect();
  }
}

s.run();
