import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { waitFor } from './helpers/index.js';

const path = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'bus.db');
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['dist/runtime/cli.js', ...args], { encoding: 'utf8', env: { ...process.env, AGENTBUS_SQLITE_PATH: path } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

test('publish stores an event and stats shows it', () => {
  const p = cli('publish', 'cli.test', '{"n":1}', '--subject', 's1');
  assert.is(p.code, 0, p.err);
  assert.ok(/^[0-9a-f-]{36}$/.test(p.out.trim()));
  const s = cli('stats', '--json');
  assert.is(s.code, 0, s.err);
  assert.equal(JSON.parse(s.out).find((t: { type: string }) => t.type === 'cli.test').length, 1);
  assert.ok(cli('stats').out.includes('cli.test'));
});

test('bad arguments: a one-line error, the usage, exit 2', () => {
  for (const args of [['frob'], ['publish', 'x'], ['publish', 'x', '{bad'], ['publish', 'bad type', '{}'], ['dlq', 'zap'], ['stats', '--nope']]) {
    const r = cli(...args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.ok(r.err.startsWith('agentbus: '), r.err);
  }
});

test('dlq ls, show, retry reach a dead letter made by a real consumer; purge of an unknown id exits 1', async () => {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  let fail = true;
  const handled: string[] = [];
  const sub = await bus.subscribe({ group: 'cli-g', types: ['cli.dl'], maxAttempts: 1 }, (e) => {
    if (fail) throw new Error('downstream unavailable');
    handled.push(e.id);
  });
  const id = await bus.publish('cli.dl', { x: 1 });
  await waitFor('dead letter', async () => (await bus.deadLetters.list({ group: 'cli-g' })).length === 1);
  const ls = cli('dlq', 'ls', '--group', 'cli-g', '--json');
  assert.is(ls.code, 0, ls.err);
  const [dl] = JSON.parse(ls.out);
  assert.is(dl.event.id, id);
  assert.ok(cli('dlq', 'ls').out.includes('downstream unavailable'));
  assert.is(JSON.parse(cli('dlq', 'show', dl.id).out).error, dl.error);
  assert.is(cli('dlq', 'show', '999999').code, 1);
  fail = false;
  const r = cli('dlq', 'retry', dl.id);
  assert.is(r.code, 0, r.err);
  await waitFor('retried event handled (across processes)', () => handled.length === 1, 5000);
  assert.equal(handled, [id]);
  assert.is(cli('dlq', 'purge', '424242').code, 1);
  await sub.close();
  await bus.close();
});

test.run();
