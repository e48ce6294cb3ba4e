// `agentbus doctor` as a user runs it: the CLI in a child process, the store from the environment.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { diskFinding, exitCode } from '../runtime/doctor.js';
import { freePort, hasRedisServer, startRedisServer } from './helpers/redis.js';

/** The environment a user would have: nothing inherited that names a store. */
const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(REDIS_|AGENTBUS_)/.test(k)));

/** Runs `agentbus doctor` from source (async: the Redis servers answer from this process' children). */
function doctor(env: Record<string, string>, ...flags: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli.ts', 'doctor', ...flags], { env: { ...clean, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'agentbus-doctor-'));
const test = suite('doctor');

test('exit codes: 1 on a failure, 2 on warnings only with --strict, else 0; disk threshold the smaller of 1 GiB and 10%', () => {
  const f = (status: 'ok' | 'info' | 'warn' | 'fail') => ({ check: 'x', status, result: '' });
  assert.is(exitCode([f('ok'), f('info')], true), 0);
  assert.is(exitCode([f('ok'), f('warn')], false), 0);
  assert.is(exitCode([f('ok'), f('warn')], true), 2);
  assert.is(exitCode([f('warn'), f('fail')], false), 1);
  const GiB = 1024 ** 3;
  assert.is(diskFinding(0.5 * GiB, 100 * GiB, '/d').status, 'warn');
  assert.is(diskFinding(2 * GiB, 100 * GiB, '/d').status, 'ok');
  assert.is(diskFinding(0.5 * GiB, 4 * GiB, '/d').status, 'ok', '12.5% of a small disk');
  assert.is(diskFinding(0.3 * GiB, 4 * GiB, '/d').status, 'warn');
});

test('a healthy SQLite file: every check ok, exit 0 even with --strict; --json parses', async () => {
  const path = join(dir, 'ok.db');
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  await bus.publish('doctor.test', { n: 1 });
  await bus.close();
  const r = await doctor({ AGENTBUS_SQLITE_PATH: path }, '--strict');
  assert.is(r.code, 0, r.out + r.err);
  for (const c of ['sqlite-file', 'journal-mode', 'integrity', 'disk-space']) assert.ok(new RegExp(`^${c}\\s+ok\\s`, 'm').test(r.out), `${c} ok in:\n${r.out}`);
  assert.ok(r.out.includes('all checks passed'));
  const j = await doctor({ AGENTBUS_SQLITE_PATH: path }, '--json');
  assert.is(j.code, 0, j.err);
  const report = JSON.parse(j.out);
  assert.is(report.adapter, 'sqlite');
  assert.is(report.status, 'ok');
  assert.equal(report.checks.map((c: { check: string }) => c.check), ['sqlite-file', 'journal-mode', 'integrity', 'disk-space']);
});

test('a missing SQLite file: "no database at <path>", exit 1, and the file is not created', async () => {
  const path = join(dir, 'nested', 'missing.db');
  const r = await doctor({ AGENTBUS_SQLITE_PATH: path });
  assert.is(r.code, 1, r.out + r.err);
  assert.ok(r.out.includes(`no database at ${path}`), r.out);
  assert.ok(/^sqlite-file\s+FAIL/m.test(r.out), r.out);
  assert.not.ok(existsSync(path));
  assert.not.ok(existsSync(join(dir, 'nested')));
  assert.is(JSON.parse((await doctor({ AGENTBUS_SQLITE_PATH: path }, '--json')).out).status, 'fail');
});

if (hasRedisServer()) {
  test('a healthy Redis: connect, version, role, eviction policy, clock ok; durability reported; exit 0 with --strict', async () => {
    const server = await startRedisServer();
    const env = { AGENTBUS_ADAPTER: 'redis', REDIS_URL: server.url };
    const r = await doctor(env, '--strict');
    assert.is(r.code, 0, r.out + r.err);
    for (const c of ['connect', 'version', 'role', 'eviction-policy', 'clock']) assert.ok(new RegExp(`^${c}\\b.*\\s+ok\\s`, 'm').test(r.out), `${c} ok in:\n${r.out}`);
    assert.ok(/^durability .*\s+info\s+appendonly no/m.test(r.out), r.out);
    const report = JSON.parse((await doctor(env, '--json')).out);
    assert.is(report.status, 'ok');
    assert.ok(report.checks.some((c: { check: string; node?: string }) => c.check === 'eviction-policy' && c.node === `127.0.0.1:${server.port}`));
    await server.stop();
  });

  test('an allkeys-lru Redis: the policy FAILs with the fix, exit 1; with AGENTBUS_ALLOW_EVICTION=1 a warning: 0, or 2 with --strict', async () => {
    const server = await startRedisServer(['--maxmemory', '4mb', '--maxmemory-policy', 'allkeys-lru']);
    const env = { AGENTBUS_ADAPTER: 'redis', REDIS_URL: server.url };
    const r = await doctor(env);
    assert.is(r.code, 1, r.out + r.err);
    assert.ok(/^eviction-policy \S+\s+FAIL\s+maxmemory-policy allkeys-lru/m.test(r.out), r.out);
    assert.ok(r.out.includes('-> set maxmemory-policy noeviction'), r.out);
    assert.ok(/^connect\s+ok/m.test(r.out), r.out);
    assert.ok(/^durability /m.test(r.out), 'the other checks still ran');
    const allowed = { ...env, AGENTBUS_ALLOW_EVICTION: '1' };
    assert.is((await doctor(allowed)).code, 0);
    const strict = await doctor(allowed, '--strict', '--json');
    assert.is(strict.code, 2, strict.out + strict.err);
    assert.is(JSON.parse(strict.out).status, 'warn');
    await server.stop();
  });

  test('no Redis listening: connect FAILs, exit 1', async () => {
    const r = await doctor({ AGENTBUS_ADAPTER: 'redis', REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    assert.is(r.code, 1, r.out + r.err);
    assert.ok(/^connect\s+FAIL\s+CONNECTION_FAILED: cannot reach Redis/m.test(r.out), r.out);
  });
}

test.run();
