// examples/verification end to end. On Redis: seed 001's real Python producer (redis-py, for
// /usr/bin/python3) XADDs flat-field entries to verification_stream, configured the seed's way
// (REDIS_HOST/REDIS_PORT); the host consumes them in group attestation_processors and publishes
// attestation.created; Redis is killed and restarted (AOF) mid-way and nothing is lost. On SQLite
// the same fields are published with the CLI.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Bus } from '../../bus/contract.js';
import { createBus } from '../../runtime/config.js';
import { startHost } from '../helpers/host.js';
import { waitFor } from '../helpers/index.js';
import { redisForTests, startRedisServer } from '../helpers/redis.js';

const AGENTS = 'examples/verification/agents.ts';

async function attestations(bus: Bus): Promise<Map<string, { wallet: string; did_id: number; evidence_hash: string }>> {
  const out = new Map();
  await bus.replay({ types: ['attestation.created'] }, (e) => void out.set((e.data as { wallet: string }).wallet, e.data));
  return out;
}

const s = suite('verification');

s('sqlite: the same flat fields published with the CLI become attestations', async () => {
  const env = { AGENTBUS_ADAPTER: 'sqlite', AGENTBUS_SQLITE_PATH: join(mkdtempSync(join(tmpdir(), 'ver-')), 'bus.db') };
  const host = await startHost(AGENTS, env);
  const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/runtime/cli.js', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  const wallet = `0x${'ab'.repeat(20)}`;
  const fields = { user_wallet: wallet, did_id: '2', result: 'verified', evidence_hash: 'abc123', verified_at: '2025-10-03T18:15:10' };
  assert.is(cli('publish', 'verification_stream', JSON.stringify(fields)).status, 0);
  assert.is(cli('publish', 'verification_stream', JSON.stringify({ ...fields, user_wallet: `0x${'cd'.repeat(20)}`, result: 'failed' })).status, 0);
  const bus = await createBus({ logger: pino({ level: 'error' }) }, { ...process.env, ...env });
  await waitFor('one attestation', async () => (await attestations(bus)).size === 1);
  assert.equal((await attestations(bus)).get(wallet), { wallet, did_id: 2, evidence_hash: 'abc123', verified_at: '2025-10-03T18:15:10' });
  host.proc.kill('SIGTERM');
  assert.is(await host.exited, 0);
  await bus.close();
});

const have = await redisForTests('verification on redis', true);
if (have) {
  await have.server?.stop();
  s('redis: the Python producer, a consumer group, a Redis restart mid-way: every verified result attested once', async () => {
    const server = await startRedisServer(['--appendonly', 'yes', '--appendfsync', 'always']);
    const env = { AGENTBUS_ADAPTER: 'redis', AGENTBUS_REDIS_PREFIX: '', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(server.port), REDIS_DB: '0' };
    const produce = (count: number, first: number) => {
      const r = spawnSync('/usr/bin/python3', ['examples/verification/producer.py', String(count), String(first)], { encoding: 'utf8', env: { ...process.env, ...env } });
      assert.is(r.status, 0, r.stderr);
      return r.stdout.trim().split('\n');
    };
    const host = await startHost(AGENTS, env);
    const ids = produce(20, 0);
    assert.is(ids.length, 20);
    assert.match(ids[0], /^\d+-\d+$/);
    const bus = await createBus({ logger: pino({ level: 'error' }) }, { ...process.env, ...env });
    const verified = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => i % 5 !== 0);
    await waitFor('first 16 attested', async () => (await attestations(bus)).size === verified(20).length, 15_000);

    await server.stop(true); // SIGKILL: the AOF has every acknowledged write
    await server.start();
    produce(20, 20);
    await waitFor('all 32 attested after the restart', async () => (await attestations(bus)).size === verified(40).length, 30_000, 200);
    const got = await attestations(bus);
    for (const i of verified(40)) assert.is(got.get(`0x${i.toString(16).padStart(40, '0')}`)?.evidence_hash, i.toString(16).padStart(64, '0'));
    assert.is((await bus.stats()).find((t) => t.type === 'attestation.created')?.length, 32, 'each attested once');
    const raw = new Redis(server.url);
    const groups = (await raw.xinfo('GROUPS', 'verification_stream')) as unknown[][];
    assert.equal(groups.map((g) => [g[1], g[5]]), [['attestation_processors', 0]], 'the seed group, nothing pending');
    assert.is(await raw.xlen('verification_stream'), 40);
    raw.disconnect();
    host.proc.kill('SIGTERM');
    assert.is(await host.exited, 0);
    await bus.close();
    await server.stop();
  });
}

s.run();
