import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

test('npm start: the demo shows events flowing on SQLite and stops cleanly', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, DEMO_SECONDS: '2', AGENTBUS_SQLITE_PATH: join(mkdtempSync(join(tmpdir(), 'agentbus-demo-')), 'demo.db') },
  });
  assert.is(r.status, 0, r.stderr);
  for (const msg of ['sent a welcome mail', 'booked payment', 'stopped cleanly']) assert.ok(r.stdout.includes(msg), `missing "${msg}" in:\n${r.stdout}`);
  const errors = r.stdout.split('\n').filter((l) => /"level":(50|60)/.test(l));
  assert.equal(errors, [], 'the demo logged errors');
});

test.run();
