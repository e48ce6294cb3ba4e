// The admin web UI (runtime/ui/) in a real headless Chromium driven by puppeteer-core, on a SQLite
// file and on Redis: a host with agents serves it under /ui; every page loads with no console error,
// the dead-letter search finds one dead letter by subject (and not by a reason it lacks), its page
// shows the error's stack, a confirmed retry moves it back and the agent handles it, a confirmed
// rewind hands a group its events again, a confirmed replay hands a topic to a fresh agent instance
// (no group moves), a bulk purge removes the selected dead letters, the keyed
// page shows state and a handler's durable wait, the tail page events; a screenshot of each page goes to docs/ui/ (SQLite run). The
// same store behind `serveUi` without actions refuses retry (403) and offers no action buttons. The
// Schedules page lists a delayed event and an agent's named reminder; a confirmed cancel removes
// the event (it never fires, while one due beside it does); read-only, no cancel button and 403.
// Needs the system Chromium (Debian's `chromium`): skipped when absent, unless CI is set.
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { launch, type Browser, type Page } from 'puppeteer-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentHost, BaseAgent, createBus, serveHttp, serveUi, type Bus, type CloudEvent, type HandlerContext, type KeyedContext } from '../index.js';
import { sleep, waitFor } from './helpers/index.js';
import { redisForTests } from './helpers/redis.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const quiet = pino({ level: 'silent' });

function skip(why: string): void {
  const t = suite('admin UI');
  t.skip(why, () => {});
  t.run();
  console.log(`SKIPPED admin UI: ${why}`);
}

/** Shared by the agents of one scenario: which skus fail, and what was handled. */
const world = { broken: new Set<string>(), handled: [] as string[] };

class Orders extends BaseAgent {
  static subscriptions = ['orders.placed'];
  static options = { maxAttempts: 1 };
  onOrdersPlaced(e: CloudEvent<{ sku: string }>) {
    if (world.broken.has(e.data.sku)) throw new Error(`payment service refused sku ${e.data.sku}`);
    world.handled.push(e.id);
  }
}

class Carts extends BaseAgent {
  static subscriptions = ['cart.item_added', 'cart.checkout'];
  static waitsFor = ['cart.paid'];
  static key = 'subject';
  onCartItemAdded(e: CloudEvent<{ sku: string }>, ctx: HandlerContext) {
    const c = ctx as KeyedContext<{ items: string[] } | null>;
    c.state = { items: [...(c.state?.items ?? []), e.data.sku] };
  }
  async onCartCheckout(_e: CloudEvent, ctx: HandlerContext) {
    await (ctx as KeyedContext<null>).step('price', () => ({ total: 42 }));
    await (ctx as KeyedContext<null>).waitFor('cart.paid', { timeout: '1d' });
  }
}

class FollowUps extends BaseAgent {
  static subscriptions = ['cart.checked_out'];
  static key = 'subject';
  async onCartCheckedOut(e: CloudEvent, ctx: HandlerContext) {
    await (ctx as KeyedContext<null>).schedule('cart.follow_up', { cart: e.subject }, { in: '10m', name: 'follow-up' });
  }
}

/** Loads a page; collects console errors and failed requests into `errors`. */
async function open(browser: Browser, errors: string[]): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 760 });
  page.on('console', (m) => void (m.type() === 'error' && errors.push(`console: ${m.text()} (${page.url()})`)));
  page.on('pageerror', (e) => void errors.push(`page error: ${(e as Error).message} (${page.url()})`));
  page.on('requestfailed', (r) => void errors.push(`request failed: ${r.url()}`));
  page.on('dialog', (d) => void d.accept(d.type() === 'prompt' ? 'earliest' : undefined));
  return page;
}

const text = (page: Page, sel: string) => page.$eval(sel, (e) => e.textContent ?? '');

async function scenario(store: string, makeBus: () => Promise<Bus>, shots: string | null): Promise<void> {
  world.broken = new Set(['sku-broken']);
  world.handled = [];
  const bus = await makeBus();
  const host = new AgentHost({ bus, agents: [Orders, Carts], logger: quiet, hostId: 'ui-test' });
  await host.start();
  const http = await serveHttp(host, 0, '127.0.0.1', { ui: { actions: true, lagSampleMs: 200 } });
  // A group that stopped reading: its lag grows with every order, for the chart.
  await (await bus.subscribe({ group: 'Audit', types: ['orders.placed'] }, () => {})).close();
  const browser = await launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const errors: string[] = [];
  const shot = async (page: Page, name: string) => {
    if (shots) await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };
  try {
    await fetch(`${http.url}/ui/api/overview`); // the first UI request starts the lag sampler
    for (const sku of ['sku-1', 'sku-2', 'sku-3']) {
      await bus.publish('orders.placed', { sku }, { subject: 'customer-7' });
      await sleep(300); // a lag sample between orders
    }
    const badId = await bus.publish('orders.placed', { sku: 'sku-broken' }, { subject: 'customer-42' });
    const otherId = await bus.publish('orders.placed', { sku: 'sku-broken' }, { subject: 'customer-43' });
    for (const sku of ['sku-1', 'sku-9']) await bus.publish('cart.item_added', { sku }, { subject: 'cart-1' });
    await waitFor('two dead letters', async () => (await bus.deadLetters.list()).length === 2);
    await waitFor('the good orders handled', () => world.handled.length === 3);
    await waitFor('the cart state', async () => (await bus.keys!.get('Carts', 'cart-1')) !== null);
    await bus.publish('cart.checkout', {}, { subject: 'cart-2' });
    await waitFor('the checkout waits', async () => (await bus.keys!.waits('Carts')).length === 1);
    const page = await open(browser, errors);

    await page.goto(`${http.url}/ui/`);
    await page.waitForSelector('#agents tbody tr th');
    assert.match(await text(page, '#agents tbody'), /Orders\s*running/, `${store}: overview lists Orders running`);
    assert.match(await text(page, '#summary'), /Dead letters\s*2/);
    await shot(page, 'overview');

    await page.goto(`${http.url}/ui/topics`);
    await page.waitForSelector('#topics tbody th');
    await page.waitForSelector('#lag-chart svg polyline');
    assert.match(await text(page, '#topics tbody'), /orders\.placed/);
    assert.match(await text(page, '#lag-legend'), /Audit orders\.placed: 5/, `${store}: the stopped group's lag in the chart's legend`);
    await shot(page, 'topics');

    // Search: a reason it lacks finds nothing; its subject finds it alone.
    await page.goto(`${http.url}/ui/dead-letters`);
    await page.waitForFunction(() => document.querySelectorAll('#dead-letters tbody tr').length === 2);
    await page.type('#f-reason', 'oversize');
    await page.click('#search button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#dead-letters tbody')?.textContent?.includes('No dead letter matches'));
    await page.$eval('#f-reason', (e) => void ((e as HTMLInputElement).value = ''));
    await page.type('#f-subject', 'customer-42');
    await page.click('#search button[type=submit]');
    await page.waitForFunction((id) => document.querySelector('#dead-letters tbody')?.textContent?.includes(id), {}, badId);
    assert.is(await page.$$eval('#dead-letters tbody tr', (rows) => rows.length), 1, `${store}: the search finds the one dead letter`);
    await shot(page, 'dead-letters');

    // Show it: the event and the error's stack.
    const dlId = (await bus.deadLetters.list()).find((d) => d.event?.id === badId)!.id;
    await Promise.all([page.waitForNavigation(), page.click('#dead-letters tbody a')]);
    await page.waitForFunction(() => (document.getElementById('stack')?.textContent ?? '').includes('payment service refused'));
    assert.match(await text(page, '#stack'), /at .*ui\.test\.ts/, `${store}: the stack names where it was thrown`);
    assert.match(await text(page, '#event'), /sku-broken/);
    await shot(page, 'dead-letter');

    // The API checks a retry as the CLI does: ids required, unknown ids named; and wants its header.
    const post = (ids: unknown, headers: Record<string, string> = { 'x-agentbus-ui': '1' }) =>
      fetch(`${http.url}/ui/api/dead-letters/retry`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ ids }) }).then(async (r) => [r.status, await r.json()] as const);
    assert.equal((await post([dlId], {}))[0], 403, 'no x-agentbus-ui header: refused');
    const [code, body] = await post([]);
    assert.is(code, 400);
    assert.match((body as { error: string }).error, /needs at least one id/);
    assert.equal(await post(['no-such-dead-letter']), [200, { done: 0, missing: ['no-such-dead-letter'], items: [] }]);
    const freshly = await fetch(`${http.url}/ui/api/dead-letters/retry`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-agentbus-ui': '1' }, body: JSON.stringify({ ids: [dlId], fresh: 'yes' }) });
    assert.equal([freshly.status, ((await freshly.json()) as { error: string }).error], [400, 'invalid dead-letter retry fresh "yes": expected true or false'], 'fresh is checked as the CLI checks it');
    assert.ok(await page.$('#retry-fresh-one'), `${store}: a dead letter's page offers Retry fresh`);
    assert.is((await bus.deadLetters.list()).length, 2, 'nothing retried yet');

    // Retry, confirmed (the dialog handler accepts): back to Orders, which now handles it.
    world.broken.clear();
    await page.click('#retry-one');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('Retried 1 of 1'));
    await waitFor('the retried order handled', () => world.handled.includes(badId));
    assert.equal((await bus.deadLetters.list()).map((d) => d.event?.id), [otherId], 'only the one retried left the dead letters');

    // Rewind, prompted for where from (the dialog handler answers earliest) and confirmed: Orders handles its 5 orders again.
    await page.goto(`${http.url}/ui/topics`);
    await page.waitForSelector('button[aria-label="Rewind group Orders on orders.placed"]');
    await page.click('button[aria-label="Rewind group Orders on orders.placed"]');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('Rewound Orders on orders.placed from earliest'));
    await waitFor('the rewound orders handled again', () => world.handled.length === 9);

    // Replay to an agent, confirmed (the dialog handler accepts): a fresh Orders gets the topic's 5
    // stored orders, as agentbus replay --agent does; no group moves.
    const lagOf = async (group: string) => (await bus.stats()).find((t) => t.type === 'orders.placed')!.groups.find((g) => g.group === group)!;
    const [auditBefore, ordersBefore] = [await lagOf('Audit'), await lagOf('Orders')];
    await page.waitForFunction(() => document.querySelectorAll('#f-replay-agent option').length === 2);
    await page.select('#f-replay-type', 'orders.placed');
    await page.select('#f-replay-agent', 'Orders');
    await page.click('#replay-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('Replayed 5 to Orders: 5 handled, 0 failed; 0 publishes listed, not stored'));
    assert.is(world.handled.length, 14, `${store}: the replayed instance handled the 5 orders`);
    assert.equal([(await lagOf('Audit')).lag, (await lagOf('Orders')).lag, (await lagOf('Orders')).pending], [auditBefore.lag, ordersBefore.lag, 0], `${store}: no group moved`);
    const replay = (body: unknown) =>
      fetch(`${http.url}/ui/api/replay`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-agentbus-ui': '1' }, body: JSON.stringify(body) }).then(async (r) => [r.status, ((await r.json()) as { error: string }).error] as const);
    assert.equal(await replay({ agent: 'Nobody', type: 'orders.placed' }), [400, 'replay: no agent "Nobody" in this host (agents: Orders, Carts)'], 'checked as the CLI checks it');
    assert.equal((await replay({ agent: 'Orders', type: 'orders.placed', from: 'yesterday' }))[0], 400);

    // Bulk: the other dead letter and a new one, selected and purged together.
    world.broken.add('sku-x');
    await bus.publish('orders.placed', { sku: 'sku-x' }, { subject: 'customer-9' });
    await waitFor('two dead letters', async () => (await bus.deadLetters.list()).length === 2);
    await page.goto(`${http.url}/ui/dead-letters?type=orders.placed`);
    await page.waitForFunction(() => document.querySelectorAll('#dead-letters input[name=pick]').length === 2);
    for (const box of await page.$$('#dead-letters input[name=pick]')) await box.click();
    await page.click('#purge-selected');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('Purged 2 of 2'));
    assert.equal(await bus.deadLetters.list(), []);

    await page.goto(`${http.url}/ui/keys`);
    await page.waitForSelector('#keys tbody th button');
    await page.click('#keys tbody th button');
    await page.waitForFunction(() => document.getElementById('state')?.textContent?.includes('sku-9'));
    await page.waitForFunction(() => document.querySelector('#waits tbody')?.textContent?.includes('cart.paid'));
    assert.match(await text(page, '#waits tbody'), /cart-2\s*cart\.paid\s*.+\s*waiting/, `${store}: the keyed page lists the checkout's wait`);
    // cart-2 has no state yet (its handler waits): its key in the waits table shows its wait and its recorded step.
    await page.click('#waits tbody th button');
    await page.waitForFunction(() => document.getElementById('state')?.textContent?.includes('"total": 42'));
    assert.match(await text(page, '#state'), /"key": "cart-2",\s*"state": null/);
    await shot(page, 'keys');

    await page.goto(`${http.url}/ui/tail?type=orders.*`);
    await page.waitForFunction(() => document.querySelectorAll('#tail tbody tr').length >= 6);
    assert.ok(!(await text(page, '#tail tbody')).includes('sku-live'), 'not yet published');
    await bus.publish('orders.placed', { sku: 'sku-live' }, { subject: 'customer-7' });
    await page.waitForFunction(() => document.querySelector('#tail tbody')?.textContent?.includes('sku-live'), { timeout: 15_000 });
    await shot(page, 'tail');

    assert.equal(errors, [], `${store}: no console error on any page`);
  } finally {
    await browser.close();
    await http.close();
    await host.stop();
    await bus.close();
  }
}

/** `serveUi` without actions: pages without action buttons; the API refuses a retry. */
async function readOnly(makeBus: () => Promise<Bus>): Promise<void> {
  const bus = await makeBus();
  await bus.subscribe({ group: 'g', types: ['ro.failing'], maxAttempts: 1 }, () => {
    throw new Error('always');
  });
  await bus.publish('ro.failing', {});
  await waitFor('a dead letter', async () => (await bus.deadLetters.list({ group: 'g' })).length === 1);
  const [dl] = await bus.deadLetters.list({ group: 'g' });
  const ui = await serveUi({ bus, port: 0 });
  const browser = await launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const errors: string[] = [];
  try {
    const page = await open(browser, errors);
    await page.goto(`${ui.url}/`);
    await page.waitForSelector('#agents-note:not([hidden])');
    await page.goto(`${ui.url}/ui/dead-letter?id=${encodeURIComponent(dl!.id)}`);
    await page.waitForFunction(() => (document.getElementById('stack')?.textContent ?? '').includes('always'));
    assert.is(await page.$('#retry-one'), null, 'no retry button when read-only');
    await page.goto(`${ui.url}/ui/topics`);
    await page.waitForSelector('#topics tbody th');
    assert.is(await page.$('#replay-form'), null, 'no replay to an agent when read-only');
    const res = await fetch(`${ui.url}/ui/api/dead-letters/retry`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-agentbus-ui': '1' }, body: JSON.stringify({ ids: [dl!.id] }) });
    assert.is(res.status, 403);
    assert.match(((await res.json()) as { error: string }).error, /read-only/);
    assert.is((await bus.deadLetters.list({ group: 'g' })).length, 1, 'nothing retried');
    assert.equal(errors, []);
  } finally {
    await browser.close();
    await ui.close();
    await bus.close();
  }
}

/**
 * The Schedules page: a delayed event and a keyed agent's named reminder listed; the API checks a
 * cancel as `schedules rm` does; a confirmed cancel removes the event, which never fires while a
 * control event due at the same time does; served read-only, no cancel button and a 403.
 */
async function schedulesPage(store: string, makeBus: () => Promise<Bus>, shots: string | null): Promise<void> {
  const bus = await makeBus();
  const host = new AgentHost({ bus, agents: [FollowUps], logger: quiet, hostId: 'ui-schedules' });
  await host.start();
  const http = await serveHttp(host, 0, '127.0.0.1', { ui: { actions: true } });
  const ro = await serveUi({ bus, port: 0 });
  const fired: string[] = [];
  await bus.subscribe({ group: 'Invoices', types: ['invoice.due'] }, (e) => void fired.push((e.data as { n: string }).n));
  const browser = await launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const errors: string[] = [];
  try {
    await bus.publish('cart.checked_out', {}, { subject: 'cart-7' });
    await waitFor('the reminder stored', async () => (await bus.schedules!.list({ type: 'cart.follow_up' })).length === 1);
    // Due in 15 s: time enough to list and cancel on a busy machine; the control fires then.
    const at = Date.now() + 15_000;
    const doomedId = await bus.publish('invoice.due', { n: 'doomed' }, { at, subject: 'invoice-1' });
    await bus.publish('invoice.due', { n: 'control' }, { at, subject: 'invoice-2' });

    const page = await open(browser, errors);
    await page.goto(`${http.url}/ui/schedules`);
    await page.waitForFunction(() => document.querySelectorAll('#schedules tbody input[name=pick]').length === 3);
    const listed = await text(page, '#schedules tbody');
    assert.ok(listed.includes(doomedId), `${store}: the delayed event is listed by its event id`);
    assert.ok(listed.includes('["FollowUps","follow-up","cart-7"]'), `${store}: the reminder is listed under its name: ${listed}`);
    assert.match(await text(page, '#schedules-count'), /1.3 of 3/);
    // Latest due first: the reminder (in 10 minutes) heads the list; filtered by type, it alone.
    await page.select('#f-order', 'latest');
    await page.click('#schedule-filter button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#schedules tbody tr')?.textContent?.includes('cart.follow_up'));
    await page.type('#f-type', 'cart.follow_up');
    await page.click('#schedule-filter button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#schedules tbody input[name=pick]').length === 1);
    await page.$eval('#f-type', (e) => void ((e as HTMLInputElement).value = ''));
    await page.select('#f-order', 'earliest');
    await page.click('#schedule-filter button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#schedules tbody input[name=pick]').length === 3);
    await shot(page, shots, 'schedules');

    // The API checks a cancel as schedules rm does; an id not pending is counted, not an error.
    const post = (url: string, ids: unknown) =>
      fetch(`${url}/ui/api/schedules/cancel`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-agentbus-ui': '1' }, body: JSON.stringify({ ids }) }).then(async (r) => [r.status, await r.json()] as const);
    const [code, body] = await post(http.url, []);
    assert.is(code, 400);
    assert.match((body as { error: string }).error, /schedules rm needs 1 to 10000 entry ids/);
    assert.equal(await post(http.url, ['no-such-entry']), [200, { removed: 0, of: 1 }]);

    // Cancel the doomed one, confirmed (the dialog handler accepts).
    const entry = (await bus.schedules!.list({ type: 'invoice.due' })).find((s) => s.event?.id === doomedId)!.id;
    await page.click(`#schedules input[value="${entry}"]`);
    await page.click('#cancel-selected');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('Cancelled 1 of 1'));
    await page.waitForFunction(() => document.querySelectorAll('#schedules tbody input[name=pick]').length === 2);
    assert.not.ok((await text(page, '#schedules tbody')).includes(doomedId), `${store}: the cancelled event left the page`);
    assert.equal((await bus.schedules!.list({ type: 'invoice.due' })).map((s) => s.event?.data), [{ n: 'control' }]);

    // Read-only: listed, no cancel button, and the API refuses.
    const roPage = await open(browser, errors);
    await roPage.goto(`${ro.url}/ui/schedules`);
    await roPage.waitForFunction(() => document.querySelector('#schedules tbody')?.textContent?.includes('cart.follow_up'));
    assert.is(await roPage.$('#cancel-selected'), null, 'no cancel selected button when read-only');
    assert.is(await roPage.$('#schedules tbody button'), null, 'no cancel button in a row when read-only');
    const [roCode, roBody] = await post(ro.url, [entry]);
    assert.is(roCode, 403);
    assert.match((roBody as { error: string }).error, /read-only/);

    await waitFor('the control event fired', () => fired.includes('control'), 40_000);
    await sleep(500);
    assert.equal(fired, ['control'], `${store}: the cancelled event never fired`);
    assert.is((await bus.schedules!.list({ type: 'cart.follow_up' })).length, 1, 'the reminder still pending');
    assert.equal(errors, [], `${store}: no console error on the Schedules page`);
  } finally {
    await browser.close();
    await ro.close();
    await http.close();
    await host.stop();
    await bus.close();
  }
}

async function shot(page: Page, shots: string | null, name: string): Promise<void> {
  if (shots) await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

if (!existsSync(CHROMIUM)) {
  if (process.env.CI) throw new Error(`admin UI: no Chromium at ${CHROMIUM} (CI is set: .ci/run installs Debian's chromium)`);
  skip(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
} else {
  const redis = await redisForTests('admin UI: Redis', true);
  const dir = mkdtempSync(join(tmpdir(), 'agentbus-ui-'));
  const shots = join(process.cwd(), 'docs/ui');
  mkdirSync(shots, { recursive: true });
  let n = 0;
  const sqlite = () => createBus({ adapter: 'sqlite', path: join(dir, `ui-${n++}.db`), logger: quiet });
  const t = suite('admin UI: SQLite');
  t('every page loads without console error; search, show, retry, keys and tail work; screenshots to docs/ui', () => scenario('sqlite', sqlite, shots));
  t('served by agentbus ui without actions: no action button, retry refused', () => readOnly(sqlite));
  t('Schedules page: a delayed event and a named reminder listed, a confirmed cancel never fires, read-only refuses; screenshot to docs/ui', () => schedulesPage('sqlite', sqlite, shots));
  t.run();

  if (redis) {
    const r = suite('admin UI: Redis');
    const make = () => createBus({ adapter: 'redis', url: redis.url, logger: quiet });
    r.after(async () => void (await redis.server?.stop()));
    r('every page loads without console error; search, show, retry, keys and tail work', () => scenario('redis', make, null));
    r('served by agentbus ui without actions: no action button, retry refused', () => readOnly(make));
    r('Schedules page: a delayed event and a named reminder listed, a confirmed cancel never fires, read-only refuses', () => schedulesPage('redis', make, null));
    r.run();
  }
}
