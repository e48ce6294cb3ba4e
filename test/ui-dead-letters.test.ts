// The admin UI's dead-letter actions in a real headless Chromium (puppeteer-core), on a SQLite file
// and on Redis, with a keyed handler that records a ctx.step before it fails: the list page's
// "Retry fresh selected", confirmed, retries the selected ones with their step records removed
// (their steps run again) while "Retry selected" keeps them; a dead letter's page, after a retry
// and after a reload (its id now names nothing), says it was retried and links to the group's dead
// letters of that event, where its new dead letter (a new id) is listed; an id that names nothing
// says why, without an error. Read-only: no bulk action buttons. No screenshots (ui.test.ts takes them).
// Needs the system Chromium (Debian's `chromium`): skipped when absent, unless CI is set.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { launch, type Browser, type Page } from 'puppeteer-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createBus, serveUi, type Bus } from '../index.js';
import type { KeyedDeliveryContext } from '../bus/keyed/contract.js';
import { waitFor } from './helpers/index.js';
import { redisForTests } from './helpers/redis.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const quiet = pino({ level: 'silent' });

/** A page that accepts every confirmation, keeping its text in `dialogs`, and collects console errors in `errors`. */
async function open(browser: Browser, errors: string[], dialogs: string[]): Promise<Page> {
  const page = await browser.newPage();
  page.on('console', (m) => {
    // A 404 the page expects (the dead letter it shows was retried) is logged by Chromium, not the page.
    if (m.type() === 'error' && !/status of 404/.test(m.text())) errors.push(`console: ${m.text()} (${page.url()})`);
  });
  page.on('pageerror', (e) => void errors.push(`page error: ${(e as Error).message} (${page.url()})`));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.accept();
  });
  return page;
}

const text = (page: Page, sel: string) => page.$eval(sel, (e) => e.textContent ?? '');

async function scenario(store: string, makeBus: () => Promise<Bus>): Promise<void> {
  const bus = await makeBus();
  const group = 'Refunds';
  const type = 'refund.requested';
  /** Calls of each key's step function: a fresh retry calls it again, a plain retry gets its recorded result. */
  const quotes = new Map<string, number>();
  const sub = await bus.subscribe({ group, types: [type], key: 'subject', maxAttempts: 1 }, async (_e, c) => {
    const ctx = c as KeyedDeliveryContext<unknown>;
    await ctx.step('quote', () => quotes.set(ctx.key, (quotes.get(ctx.key) ?? 0) + 1).get(ctx.key));
    throw new Error(`refund service down for ${ctx.key}`);
  });
  const ui = await serveUi({ bus, port: 0, actions: true });
  const ro = await serveUi({ bus, port: 0 });
  const browser = await launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const errors: string[] = [];
  const dialogs: string[] = [];
  const dlOf = async (key: string) => (await bus.deadLetters.list({ group })).find((d) => d.event?.subject === key);
  try {
    const eventOf: Record<string, string> = {};
    for (const key of ['r1', 'r2', 'r3']) eventOf[key] = await bus.publish(type, {}, { subject: key });
    await waitFor('three dead letters', async () => (await bus.deadLetters.list({ group })).length === 3);
    assert.equal([...quotes.values()], [1, 1, 1]);
    const first = { r1: (await dlOf('r1'))!.id, r2: (await dlOf('r2'))!.id, r3: (await dlOf('r3'))!.id };

    // Retry fresh selected: r1 and r2, confirmed; their steps run again (a second call each).
    const page = await open(browser, errors, dialogs);
    await page.goto(`${ui.url}/ui/dead-letters?group=${group}`);
    await page.waitForFunction(() => document.querySelectorAll('#dead-letters input[name=pick]').length === 3);
    assert.ok(await page.$('#retry-fresh-selected'), `${store}: the list offers Retry fresh selected`);
    await page.click('#retry-fresh-selected');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('Select dead letters first.'));
    assert.equal(dialogs, [], 'nothing selected: no confirmation, nothing retried');
    for (const id of [first.r1, first.r2]) await page.click(`#dead-letters input[value="${id}"]`);
    await page.click('#retry-fresh-selected');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('Retried 2 of 2'));
    assert.equal(dialogs, ['Retry 2 dead letters, fresh (their recorded steps and waits removed: their steps run again)?'], `${store}: confirmed as the other actions are`);
    assert.match(await text(page, '#status'), /An event that fails again becomes a new dead letter with a new id\./);
    await waitFor('r1 and r2 failed again, fresh', () => quotes.get('r1') === 2 && quotes.get('r2') === 2);
    await waitFor('three dead letters again', async () => (await bus.deadLetters.list({ group })).length === 3);

    // Retry selected (not fresh): r3's step keeps its recorded result (no second call).
    await page.goto(`${ui.url}/ui/dead-letters?group=${group}`);
    await page.waitForFunction((id) => document.querySelector(`#dead-letters input[value="${id}"]`) !== null, {}, first.r3);
    await page.click(`#dead-letters input[value="${first.r3}"]`);
    await page.click('#retry-selected');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('Retried 1 of 1'));
    assert.is(dialogs.at(-1), 'Retry 1 dead letter?');
    await waitFor('r3 dead-lettered again', async () => (await dlOf('r3')) !== undefined && (await dlOf('r3'))!.id !== first.r3);
    assert.is(quotes.get('r3'), 1, `${store}: a plain retry gets the recorded step result`);

    // One dead letter's page: Retry, confirmed; it says so and links to the group's dead letters of that event.
    const r1 = (await dlOf('r1'))!;
    assert.is.not(r1.id, first.r1, 'a new dead letter id after the retry');
    await page.goto(`${ui.url}/ui/dead-letters?group=${group}&event=${eventOf.r1}`);
    await page.waitForFunction(() => document.querySelectorAll('#dead-letters tbody a').length === 1);
    await Promise.all([page.waitForNavigation(), page.click('#dead-letters tbody a')]);
    await page.waitForFunction(() => (document.getElementById('stack')?.textContent ?? '').includes('refund service down'));
    assert.is(await page.$eval('#gone', (e) => (e as HTMLElement).hidden), true, 'no notice before the retry');
    await page.click('#retry-one');
    await page.waitForFunction(() => !(document.getElementById('gone') as HTMLElement).hidden);
    const notice = `Retried: dead letter ${r1.id} left the dead letters, and its event ${eventOf.r1} went back to group ${group}. If it fails again it becomes a new dead letter with a new id: dead letters of ${group} with this event`;
    assert.is(await text(page, '#gone'), notice, store);
    const href = `/ui/dead-letters?group=${group}&event=${eventOf.r1}`;
    assert.is(await page.$eval('#gone a', (a) => a.getAttribute('href')), href);
    assert.equal(await page.$$eval('.bulk button', (bs) => bs.map((b) => (b as HTMLButtonElement).disabled)), [true, true, true], 'no second action on a retried dead letter');

    // Reloaded, the old id names nothing (the API's 404): the page still says retried, not an error.
    await waitFor('r1 dead-lettered again', async () => (await dlOf('r1'))?.id !== r1.id && (await dlOf('r1')) !== undefined);
    await page.reload();
    await page.waitForFunction(() => !(document.getElementById('gone') as HTMLElement).hidden);
    assert.is(await text(page, '#gone'), notice, `${store}: after a reload`);
    assert.is(await text(page, '#status'), '', 'no error shown');
    await Promise.all([page.waitForNavigation(), page.click('#gone a')]);
    await page.waitForFunction(() => document.querySelectorAll('#dead-letters tbody a').length === 1);
    const again = (await dlOf('r1'))!;
    assert.is(await page.$eval('#dead-letters input[name=pick]', (i) => (i as HTMLInputElement).value), again.id, `${store}: the link finds the event's new dead letter`);

    // An id that names nothing, opened from nowhere: why, and a link to the group's dead letters.
    await page.goto(`${ui.url}/ui/dead-letter?id=${encodeURIComponent(first.r2)}&group=${group}`);
    await page.waitForFunction(() => !(document.getElementById('gone') as HTMLElement).hidden);
    assert.is(await text(page, '#gone'), `No dead letter ${first.r2} now: it was retried or purged, or never there. A retried event that failed again is a new dead letter with a new id: the dead letters of ${group}`);
    assert.is(await page.$eval('#gone a', (a) => a.getAttribute('href')), `/ui/dead-letters?group=${group}`);
    assert.is(await text(page, '#status'), '');

    // Read-only: no bulk action at all.
    const roPage = await open(browser, errors, dialogs);
    await roPage.goto(`${ro.url}/ui/dead-letters`);
    await roPage.waitForFunction(() => document.querySelectorAll('#dead-letters tbody tr').length === 3);
    assert.equal(await roPage.$$('.bulk button'), [], 'no action buttons when read-only');
    assert.equal(errors, [], `${store}: no console error`);
  } finally {
    await browser.close();
    await ui.close();
    await ro.close();
    await sub.close();
    await bus.close();
  }
}

if (!existsSync(CHROMIUM)) {
  if (process.env.CI) throw new Error(`admin UI dead letters: no Chromium at ${CHROMIUM} (CI is set: .ci/run installs Debian's chromium)`);
  const t = suite('admin UI dead letters');
  t.skip(`no Chromium at ${CHROMIUM}`, () => {});
  t.run();
  console.log(`SKIPPED admin UI dead letters: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
} else {
  const redis = await redisForTests('admin UI dead letters: Redis', true);
  const dir = mkdtempSync(join(tmpdir(), 'agentbus-ui-dl-'));
  const t = suite('admin UI dead letters: SQLite');
  t('Retry fresh selected runs the steps again, Retry selected does not; a retried dead letter\'s page says retried and links to its new one', () =>
    scenario('sqlite', () => createBus({ adapter: 'sqlite', path: join(dir, 'ui-dl.db'), logger: quiet })));
  t.run();
  if (redis) {
    const r = suite('admin UI dead letters: Redis');
    r.after(async () => void (await redis.server?.stop()));
    r('Retry fresh selected runs the steps again, Retry selected does not; a retried dead letter\'s page says retried and links to its new one', () =>
      scenario('redis', () => createBus({ adapter: 'redis', url: redis.url, logger: quiet })));
    r.run();
  }
}
