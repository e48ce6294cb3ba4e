import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from './helpers/index.js';

// The very command `npm start` runs, taken from package.json so the two cannot drift apart.
const [cmd, ...args] = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start.split(' ');

test('npm start: the host runs the demo agents on SQLite, events flow, Audit summarises at info, one warning per failure, SIGTERM exits 0', async () => {
  assert.is(cmd, 'node');
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, LOG_LEVEL: '', AGENTBUS_HTTP_PORT: '0', AGENTBUS_SQLITE_PATH: join(mkdtempSync(join(tmpdir(), 'agentbus-demo-')), 'demo.db') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', r));
  // Audit's first summary comes after 5 s; by then Traffic has published a negative amount (every 7th).
  await waitFor('events flowing and an Audit summary', () => ['sent a welcome mail', 'booked payment', 'audit: recorded'].every((m) => out.includes(m)), 30_000);
  await waitFor('a dead letter', () => out.includes('"msg":"dead letter"'), 30_000);
  proc.kill('SIGTERM');
  assert.is(await exited, 0, out);
  for (const msg of ['host running', 'agent Audit: starting -> running', 'host exited']) assert.ok(out.includes(msg), `missing "${msg}" in:\n${out}`);
  const records = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(records.filter((r) => (r.level as number) >= 50), [], 'the demo logged errors');
  const audit = records.find((r) => String(r.msg).startsWith('audit: recorded'))!;
  assert.is(audit.level, 30, 'Audit summarises at info');
  assert.ok((audit.byType as Record<string, number>)['user.signed_up'] > 0, JSON.stringify(audit));
  // One warning per failed delivery: its event id and attempt appear in one warning only.
  const warnings = records.filter((r) => r.level === 40);
  const keys = warnings.map((r) => `${r.id} attempt ${r.attempt ?? r.attempts}`);
  assert.equal(keys.filter((k, i) => keys.indexOf(k) !== i), [], `a failure logged twice:\n${warnings.map((w) => JSON.stringify(w)).join('\n')}`);
  for (const w of warnings) {
    assert.ok(['delivery failed, will retry', 'dead letter'].includes(String(w.msg)), JSON.stringify(w));
    assert.ok(w.group === 'Billing' && typeof w.id === 'string' && w.type === 'payment.received' && (w.err ?? w.error), JSON.stringify(w));
  }
});

test('npm start keeps its events in ./data/demo.db, not the ./data/agentbus.db the CLI and other examples share; the environment wins', () => {
  const flags = args.filter((a) => a.startsWith('--env-file='));
  const env = { ...process.env };
  delete env.AGENTBUS_SQLITE_PATH;
  const path = (e: NodeJS.ProcessEnv) => spawnSync(process.execPath, [...flags, '-p', 'process.env.AGENTBUS_SQLITE_PATH'], { env: e, encoding: 'utf8' }).stdout.trim();
  assert.is(path(env), './data/demo.db');
  assert.is(path({ ...env, AGENTBUS_SQLITE_PATH: '/elsewhere/x.db' }), '/elsewhere/x.db');
});

test.run();
