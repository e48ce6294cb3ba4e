// The Redis store's health: what createRedisBus refuses, warns about and reports at connect and on
// reconnect, against real redis-servers this file starts; the parsers as table tests.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import {
  clockFinding,
  clusterFinding,
  compareVersions,
  durabilityFinding,
  evictionFinding,
  MIN_REDIS_VERSION,
  parseInfo,
  replicationFinding,
  TTL_KEYS,
  versionFinding,
} from '../adapters/redis/findings.js';
import { ConfigurationError } from '../index.js';
import { rejects, uniq, waitFor } from './helpers/index.js';
import { hasRedisServer, startRedisCluster, startRedisServer } from './helpers/redis.js';

interface Rec {
  level: number;
  msg: string;
  check?: string;
  status?: string;
  node?: string;
  result?: string;
  fix?: string;
}

/** A logger keeping every record, parsed. */
function capture() {
  const recs: Rec[] = [];
  return { recs, logger: pino({ level: 'debug' }, { write: (s: string) => void recs.push(JSON.parse(s)) }) };
}
const of = (recs: Rec[], check: string) => recs.filter((r) => r.check === check);

const pure = suite('health: parsing and verdicts');

pure('versions: the minimum is 6.2; older refused with found and needed, newer and odd suffixes accepted', () => {
  assert.is(MIN_REDIS_VERSION, '6.2.0');
  const cases: [string | undefined, string][] = [
    ['5.0.14', 'fail'],
    ['6.0.16', 'fail'],
    ['6.2', 'ok'],
    ['6.2.0', 'ok'],
    ['6.2.14', 'ok'],
    ['7.0.15', 'ok'],
    ['7.2.4', 'ok'],
    ['10.0.0', 'ok'],
    ['255.255.255', 'ok'], // a dev build
    [undefined, 'warn'],
    ['', 'warn'],
  ];
  for (const [v, want] of cases) assert.is(versionFinding(v).status, want, String(v));
  const old = versionFinding('6.0.16');
  assert.is(old.code, 'UNSUPPORTED_STORE');
  assert.ok(old.result.includes('6.0.16') && old.result.includes('6.2.0'), old.result);
  assert.is(compareVersions('6.10.0', '6.9.9'), 1);
  assert.is(compareVersions('6.2', '6.2.0'), 0);
  assert.is(compareVersions('6.1.99', '6.2.0'), -1);
});

pure('eviction policies: allkeys-* refused (warned with opt-in), volatile-* warned naming the TTL keys, noeviction ok', () => {
  for (const p of ['allkeys-lru', 'allkeys-lfu', 'allkeys-random']) {
    const f = evictionFinding(p, false);
    assert.is(f.status, 'fail', p);
    assert.is(f.code, 'UNSAFE_STORE_CONFIG');
    assert.ok(f.result.includes(p) && f.fix!.includes('noeviction') && f.fix!.includes('AGENTBUS_ALLOW_EVICTION'), f.result);
    assert.is(evictionFinding(p, true).status, 'warn');
  }
  for (const p of ['volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl']) {
    const f = evictionFinding(p, false);
    assert.is(f.status, 'warn', p);
    assert.ok(f.result.includes(':dedup:') && f.result.includes('duplicate'), f.result);
  }
  assert.is(evictionFinding('noeviction', false).status, 'ok');
  assert.is(evictionFinding(undefined, false).status, 'warn');
  assert.ok(evictionFinding(undefined, false).result.includes('could not read'));
});

pure('durability: what a crash loses with each setting', () => {
  const d = (config: Record<string, string> | null, info: Record<string, string> | null = null) => durabilityFinding(config, info);
  assert.ok(d({ appendonly: 'yes', appendfsync: 'always', save: '' }).result.includes('loses nothing'));
  assert.ok(d({ appendonly: 'yes', appendfsync: 'everysec', save: '3600 1' }).result.includes('about the last second'));
  assert.ok(d({ appendonly: 'no', appendfsync: 'everysec', save: '3600 1 300 100' }).result.includes('since the last snapshot'));
  const none = d({ appendonly: 'no', appendfsync: 'everysec', save: '' });
  assert.ok(none.result.includes('appendonly no') && none.result.includes('RDB snapshots off') && none.result.includes('loses everything'), none.result);
  assert.is(none.status, 'info');
  // CONFIG refused: INFO still tells whether AOF is on.
  assert.ok(d(null, { aof_enabled: '0' }).result.includes('appendonly no'));
  assert.ok(d(null, { aof_enabled: '1' }).result.includes('appendonly yes'));
  assert.is(d(null, null).status, 'warn');
});

pure('INFO parsing; replica, clock and cluster verdicts', () => {
  const info = parseInfo('# Replication\r\nrole:slave\r\nmaster_host:10.0.0.7\r\nmaster_port:6380\r\n\r\n# Memory\r\nmaxmemory_policy:allkeys-lru\r\n');
  assert.equal(info, { role: 'slave', master_host: '10.0.0.7', master_port: '6380', maxmemory_policy: 'allkeys-lru' });
  const r = replicationFinding(info);
  assert.is(r.status, 'fail');
  assert.ok(r.result.includes('10.0.0.7:6380') && r.fix!.includes('Sentinel'), r.result);
  assert.is(replicationFinding({ role: 'master' }).status, 'ok');
  assert.is(clockFinding(20).status, 'ok');
  assert.is(clockFinding(-5000).status, 'warn');
  assert.ok(clockFinding(-5000).result.includes('5000 ms ahead'));
  assert.is(clusterFinding({ cluster_state: 'ok', cluster_slots_ok: '16384', cluster_slots_assigned: '16384' }).status, 'ok');
  assert.is(clusterFinding({ cluster_state: 'fail', cluster_slots_ok: '10923', cluster_slots_assigned: '16384' }).status, 'fail');
});

pure.run();

if (!hasRedisServer()) {
  if (process.env.AGENTBUS_REQUIRE_REDIS === '1') throw new Error('health: no redis-server on PATH (AGENTBUS_REQUIRE_REDIS=1)');
  console.log('SKIPPED health against real servers: no redis-server on PATH');
} else {
  const test = suite('health: real servers');

  test('allkeys-lru: refused naming the policy and the fix; no connection left open', async () => {
    const server = await startRedisServer(['--maxmemory', '4mb', '--maxmemory-policy', 'allkeys-lru']);
    const { recs, logger } = capture();
    const err = await rejects(() => createRedisBus({ url: server.url, logger }, {}), 'UNSAFE_STORE_CONFIG', 'allkeys-lru', 'noeviction', `127.0.0.1:${server.port}`);
    assert.ok(err instanceof ConfigurationError);
    assert.is(of(recs, 'eviction-policy')[0].level, 50, 'logged at error level too');
    const admin = new Redis(server.url);
    await waitFor('the refused connection closed', async () => parseInfo(await admin.info('clients')).connected_clients === '1');
    admin.disconnect();
    await server.stop();
  });

  test('allkeys-lru with the opt-in (option or AGENTBUS_ALLOW_EVICTION=1): one warning, publishing works', async () => {
    const server = await startRedisServer(['--maxmemory', '4mb', '--maxmemory-policy', 'allkeys-lru']);
    const a = capture();
    const bus = await createRedisBus({ url: server.url, allowEvictionPolicy: true, logger: a.logger }, {});
    const warned = of(a.recs, 'eviction-policy');
    assert.is(warned.length, 1);
    assert.is(warned[0].level, 40);
    assert.ok(warned[0].msg.includes('allkeys-lru'), warned[0].msg);
    const type = uniq('health.optin');
    await bus.publish(type, { n: 1 });
    assert.is((await bus.stats()).find((t) => t.type === type)?.length, 1);
    await bus.close();
    const b = capture();
    const viaEnv = await createRedisBus({ url: server.url, logger: b.logger }, { AGENTBUS_ALLOW_EVICTION: '1' });
    assert.is(of(b.recs, 'eviction-policy')[0].status, 'warn');
    await viaEnv.close();
    await rejects(() => createRedisBus({ url: server.url, allowEvictionPolicy: 'yes' as unknown as boolean }, {}), 'INVALID_OPTION', 'allowEvictionPolicy');
    await server.stop();
  });

  test('volatile-lru: warned (dedup markers named), not refused', async () => {
    const server = await startRedisServer(['--maxmemory', '64mb', '--maxmemory-policy', 'volatile-lru']);
    const { recs, logger } = capture();
    const bus = await createRedisBus({ url: server.url, logger }, {});
    const [w] = of(recs, 'eviction-policy');
    assert.is(w.status, 'warn');
    assert.ok(w.msg.includes('volatile-lru') && w.msg.includes(':dedup:'), w.msg);
    await bus.publish(uniq('health.volatile'), {});
    await bus.close();
    await server.stop();
  });

  test('CONFIG renamed away: the policy is read from INFO (allkeys refused, noeviction accepted); neither answering: a warning', async () => {
    const bad = await startRedisServer(['--rename-command', 'CONFIG', '', '--maxmemory', '4mb', '--maxmemory-policy', 'allkeys-lru']);
    await rejects(() => createRedisBus({ url: bad.url, logger: capture().logger }, {}), 'UNSAFE_STORE_CONFIG', 'allkeys-lru');
    await bad.stop();

    const good = await startRedisServer(['--rename-command', 'CONFIG', '']);
    const g = capture();
    const bus = await createRedisBus({ url: good.url, logger: g.logger }, {});
    assert.is(of(g.recs, 'eviction-policy')[0].status, 'ok');
    const [d] = of(g.recs, 'durability');
    assert.ok(d.result!.includes('appendonly no') && d.result!.includes('CONFIG refused'), d.result);
    await bus.close();
    await good.stop();

    // An ACL user allowed neither CONFIG nor INFO (as on some managed services).
    const blind = await startRedisServer();
    const admin = new Redis(blind.url);
    await admin.call('ACL', 'SETUSER', 'blind', 'on', '>blindpw', '~*', '&*', '+@all', '-config', '-info');
    admin.disconnect();
    const b = capture();
    const bus2 = await createRedisBus({ url: `redis://blind:blindpw@127.0.0.1:${blind.port}`, logger: b.logger }, {});
    const [e] = of(b.recs, 'eviction-policy');
    assert.is(e.status, 'warn');
    assert.ok(e.result!.includes('could not read maxmemory-policy'), e.result);
    assert.is(of(b.recs, 'version')[0].status, 'warn');
    await bus2.close();
    await blind.stop();
  });

  test('a replica is refused naming the master it follows', async () => {
    const master = await startRedisServer();
    const replica = await startRedisServer(['--replicaof', '127.0.0.1', String(master.port)]);
    const err = await rejects(() => createRedisBus({ url: replica.url, logger: capture().logger }, {}), 'UNSUPPORTED_STORE', 'replica', `127.0.0.1:${master.port}`, 'Sentinel');
    assert.ok(err instanceof ConfigurationError);
    await replica.stop();
    await master.stop();
  });

  test('durability reported once at info level (appendonly no; appendonly yes everysec); the 7.0 server passes the version check', async () => {
    const plain = await startRedisServer();
    const p = capture();
    const bus = await createRedisBus({ url: plain.url, logger: p.logger }, {});
    const d = of(p.recs, 'durability');
    assert.is(d.length, 1);
    assert.is(d[0].level, 30);
    assert.ok(d[0].msg.includes('appendonly no') && d[0].msg.includes('RDB snapshots off') && d[0].msg.includes('loses everything'), d[0].msg);
    const [v] = of(p.recs, 'version');
    assert.is(v.status, 'ok');
    assert.ok(/^Redis \d+\.\d+/.test(v.result!), v.result);
    assert.not.ok(JSON.stringify(p.recs).includes('password'), 'no client options in the log');
    await bus.close();
    await plain.stop();

    const aof = await startRedisServer(['--appendonly', 'yes', '--appendfsync', 'everysec']);
    const a = capture();
    const bus2 = await createRedisBus({ url: aof.url, logger: a.logger }, {});
    const [ad] = of(a.recs, 'durability');
    assert.ok(ad.msg.includes('appendonly yes, appendfsync everysec') && ad.msg.includes('a Redis crash loses about the last second'), ad.msg);
    await bus2.close();
    await aof.stop();
  });

  test('the password never reaches a health record', async () => {
    const secret = 's3cret-health-pw';
    const server = await startRedisServer(['--requirepass', secret, '--maxmemory-policy', 'volatile-lru'], { password: secret });
    const { recs, logger } = capture();
    const bus = await createRedisBus({ url: server.url, logger }, {});
    assert.ok(of(recs, 'eviction-policy').length === 1);
    assert.not.ok(JSON.stringify(recs).includes(secret));
    await bus.close();
    await server.stop();
  });

  test('reconnect to a server now on allkeys-lru: one error logged, publishes fail with UNSAFE_STORE_CONFIG; back to noeviction: publishing resumes', async () => {
    const server = await startRedisServer();
    const { recs, logger } = capture();
    const bus = await createRedisBus({ url: server.url, logger }, {});
    const type = uniq('health.reconnect');
    await bus.publish(type, { n: 0 });
    const admin = new Redis(server.url);
    await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    await admin.call('CLIENT', 'KILL', 'TYPE', 'normal'); // SKIPME yes: every client but admin
    await waitFor('the reconnect check logged', () => of(recs, 'eviction-policy').some((r) => r.level === 50));
    await rejects(() => bus.publish(type, { n: 1 }), 'UNSAFE_STORE_CONFIG', 'allkeys-lru', 'after a reconnect', 'noeviction');
    await rejects(() => bus.publish(type, { n: 2 }), 'UNSAFE_STORE_CONFIG');
    assert.is(of(recs, 'eviction-policy').filter((r) => r.level === 50).length, 1, 'one error per reconnect, not per publish');
    assert.is(await admin.xlen(`events:${type}`), 1, 'nothing stored while refused');

    await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    let id: string | null = null;
    await waitFor('publishing resumes', async () => (id = await bus.publish(type, { n: 3 }).catch(() => null)) !== null, 10_000, 100);
    assert.ok(recs.some((r) => r.msg.includes('publishing resumes')));
    assert.is(await admin.xlen(`events:${type}`), 2);
    await bus.close();
    admin.disconnect();
    await server.stop();
  });

  test('only the documented keys carry a TTL after publish, subscribe, dead letter, retry, dedup publish', async () => {
    const server = await startRedisServer();
    const bus = await createRedisBus({ url: server.url, logger: capture().logger }, {});
    const type = uniq('health.ttl');
    let fail = true;
    const handled: string[] = [];
    const sub = await bus.subscribe({ group: 'ttl-g', types: [type], maxAttempts: 1, from: 'earliest' }, (e) => {
      if (fail) throw new Error('boom');
      handled.push(e.id);
    });
    const first = await bus.publish(type, { n: 1 });
    await waitFor('dead letter', async () => (await bus.deadLetters.list({ group: 'ttl-g' })).length === 1);
    fail = false;
    const [dl] = await bus.deadLetters.list({ group: 'ttl-g' });
    assert.is(await bus.deadLetters.retry([dl.id]), 1);
    await bus.publish(type, { n: 2 }, { id: 'caller-1' });
    await bus.publish(type, { n: 2 }, { id: 'caller-1' }); // a duplicate, stored once
    await bus.publishBatch([{ type, data: { n: 3 } }]);
    await waitFor('retried and new events handled', () => handled.length === 3);
    assert.ok(handled.includes(first));
    await bus.deadLetters.list();
    await bus.stats();
    await bus.rewind({ group: 'ttl-g', type, from: 'earliest' });
    await sub.close();
    await bus.close();

    const admin = new Redis(server.url);
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await admin.scan(cursor, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    const withTtl: string[] = [];
    for (const k of keys) if ((await admin.pttl(k)) !== -1) withTtl.push(k);
    const undocumented = withTtl.filter((k) => !TTL_KEYS.some((t) => t.pattern.test(k)));
    assert.equal(undocumented, [], `keys with a TTL outside TTL_KEYS: ${undocumented.join(', ')}`);
    assert.ok(withTtl.some((k) => k.includes(':dedup:')), `the dedup marker has its TTL (keys: ${keys.join(', ')})`);
    for (const kind of [':dlq', ':retry:ttl-g', '{agentbus}:topics', '{agentbus}:groups']) assert.ok(keys.some((k) => k.endsWith(kind) || k.includes(kind)), `workload made a ${kind} key`);
    admin.disconnect();
    await server.stop();
  });

  test('Redis Cluster: every master is checked; an allkeys policy on one master is refused naming it', async () => {
    const cluster = await startRedisCluster(3);
    const { recs, logger } = capture();
    const bus = await createRedisBus({ cluster: cluster.nodes.map((n) => `${n.host}:${n.port}`), logger }, {});
    const nodes = new Set(of(recs, 'version').map((r) => r.node));
    assert.is(nodes.size, 3);
    assert.is(of(recs, 'cluster').filter((r) => r.status === 'ok').length, 3);
    await bus.close();
    const one = cluster.nodes[1];
    const admin = new Redis(one.port, one.host);
    await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lfu');
    admin.disconnect();
    await rejects(() => createRedisBus({ cluster: cluster.nodes.map((n) => `${n.host}:${n.port}`), logger: capture().logger }, {}), 'UNSAFE_STORE_CONFIG', 'allkeys-lfu', `${one.host}:${one.port}`);
    await cluster.stop();
  });

  test.run();
}
