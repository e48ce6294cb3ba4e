// The conformance suite's cleanup: a scenario that fails mid-way leaves no bus, subscription or
// handler wait behind (see target() in test/conformance/index.ts). Its fixture fails one scenario
// on purpose, so it runs in a process of its own.
import { spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

test('a failing scenario closes the bus and subscription it made, without waiting for its handler', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/conformance-leak.ts'], { env: { ...process.env, FORCE_COLOR: '0' } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  // Generous: the fixture takes about a second; a cleanup that drains would wait 10 minutes.
  const limit = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  clearTimeout(limit);
  assert.is(signal, null, `the fixture had to be killed: the cleanup waited for the handler\n${out}`);
  assert.is(code, 1, out);
  assert.match(out, 'deliberate failure with the bus open');
  assert.match(out, /Total:\s+2\s+Passed:\s+1/, out);
});

test.run();
