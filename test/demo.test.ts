import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from './helpers/index.js';

test('npm start: the host runs the demo agents on SQLite, events flow, SIGTERM exits 0', async () => {
  // The very command `npm start` runs, taken from package.json so the two cannot drift apart.
  const [cmd, ...args] = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start.split(' ');
  assert.is(cmd, 'node');
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, AGENTBUS_HTTP_PORT: '0', AGENTBUS_SQLITE_PATH: join(mkdtempSync(join(tmpdir(), 'agentbus-demo-')), 'demo.db') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', r));
  await waitFor('events flowing', () => ['sent a welcome mail', 'booked payment'].every((m) => out.includes(m)), 20_000);
  proc.kill('SIGTERM');
  assert.is(await exited, 0, out);
  for (const msg of ['host running', 'agent Audit: starting -> running', 'host exited']) assert.ok(out.includes(msg), `missing "${msg}" in:\n${out}`);
  const errors = out.split('\n').filter((l) => /"level":(50|60)/.test(l));
  assert.equal(errors, [], 'the demo logged errors');
});

test.run();
