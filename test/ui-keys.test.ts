// The admin UI's keyed page (runtime/ui/) in a real headless Chromium, on a SQLite file: a group
// whose keys have no state yet, each handler waiting (ctx.waitFor) or asking (a durable
// ctx.request), says so in the keys table instead of showing it empty, and the records table is
// captioned as waits and requests. Needs the system Chromium: skipped when absent, unless CI is set.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { launch } from 'puppeteer-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createBus, serveUi } from '../index.js';
import type { KeyedDeliveryContext } from '../bus/keyed/contract.js';
import { waitFor } from './helpers/index.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const test = suite('admin UI: keyed page');

test('keys with records and no state: the keys table says how many wait (see below); the records table is captioned waits and requests', async () => {
  const bus = await createBus({ adapter: 'sqlite', path: join(mkdtempSync(join(tmpdir(), 'agentbus-ui-keys-')), 'bus.db'), logger: pino({ level: 'silent' }) });
  await bus.subscribe({ group: 'Waiters', types: ['job.started'], waitsFor: ['job.approved'], key: 'subject' }, async (_e, c) => {
    const ctx = c as KeyedDeliveryContext<unknown>;
    if (ctx.key === 'asks') await ctx.request('tool.run', {}, { timeoutMs: 600_000 });
    else await ctx.waitFor('job.approved', { timeout: '1d' });
  });
  await bus.publish('job.started', {}, { subject: 'waits' });
  await bus.publish('job.started', {}, { subject: 'asks' });
  await waitFor('both recorded', async () => (await bus.keys!.waits('Waiters')).length === 2, 10_000);
  const ui = await serveUi({ bus, port: 0 });
  const browser = await launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const errors: string[] = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => void errors.push((e as Error).message));
    await page.goto(`${ui.url}/ui/keys?group=Waiters`);
    await page.waitForFunction(() => (document.querySelector('#waits tbody')?.textContent ?? '').includes('request tool.run'));
    await page.waitForFunction(() => (document.querySelector('#keys tbody')?.textContent ?? '') !== '');
    assert.is(await page.$eval('#keys tbody', (e) => e.textContent), '2 keys wait with no state yet: see below.');
    assert.match(await page.$eval('#waits caption', (e) => e.textContent ?? ''), /^Durable waits and requests \(ctx\.waitFor, ctx\.request\)/);
    assert.equal(errors, []);
  } finally {
    await browser.close();
    await ui.close();
    await bus.close();
  }
});

if (existsSync(CHROMIUM)) test.run();
else {
  if (process.env.CI) throw new Error(`admin UI: no Chromium at ${CHROMIUM}`);
  const t = suite('admin UI: keyed page');
  t.skip(`no Chromium at ${CHROMIUM}`, () => {});
  t.run();
}
