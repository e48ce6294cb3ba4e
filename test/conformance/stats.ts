import { pino } from 'pino';
import * as assert from 'uvu/assert';
import type { Bus } from '../../bus/contract.js';
import { sleep, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

async function groupStats(bus: Bus, type: string, group: string) {
  const g = (await bus.stats()).find((s) => s.type === type)?.groups.find((x) => x.group === group);
  assert.ok(g, `no stats for group ${group} on ${type}`);
  return g!;
}

/** What stats tell the operator: the same on every store. */
export function statsSuite(a: Target): void {
  const test = a.scenarios('stats');

  test('lag is what is not yet delivered (after publishing, draining, rewinding); consumers are the open subscriptions', async () => {
    const bus = await a.make();
    const type = uniq('lag');
    const group = uniq('g');
    const got: string[] = [];
    const open = (consumer: string) => bus.subscribe({ group, consumer, types: [type], from: 'earliest' }, (e) => void got.push(e.id));
    await (await open('first')).close();
    await bus.publishBatch(Array.from({ length: 7 }, (_, i) => ({ type, data: i })));
    assert.equal(await groupStats(bus, type, group), { group, pending: 0, lag: 7, consumers: 0, deadLetters: 0 });

    const [s1, s2] = [await open('a'), await open('b')];
    await waitFor('7 handled', () => got.length === 7);
    await waitFor('acknowledged', async () => (await groupStats(bus, type, group)).pending === 0);
    assert.equal(await groupStats(bus, type, group), { group, pending: 0, lag: 0, consumers: 2, deadLetters: 0 });
    await s2.close();
    assert.is((await groupStats(bus, type, group)).consumers, 1, 'a closed subscription is no consumer');
    await s1.close();

    await bus.rewind({ group, type, from: 'earliest' });
    assert.is((await groupStats(bus, type, group)).lag, 7, 'lag after a rewind to earliest');
    await bus.publish(type, 'more');
    assert.is((await groupStats(bus, type, group)).lag, 8);
    const s3 = await open('c');
    await waitFor('8 more handled', () => got.length === 15);
    await waitFor('lag 0 once drained', async () => (await groupStats(bus, type, group)).lag === 0);
    await s3.close();
    await bus.close();
  });

  test('a consumer idle past the liveness window still counts; one that stopped without closing stops counting and is removed once it holds nothing', async () => {
    const bus = await a.make();
    const type = uniq('idle');
    const group = uniq('g');
    // A consumer that stops with deliveries in hand (close without drain while its handlers hang),
    // as a killed process would leave it: its store record stays, holding those deliveries.
    const stuck = await bus.subscribe({ group, consumer: 'stuck', types: [type], concurrency: 2, claimIdleMs: 300 }, () => new Promise(() => {}));
    await bus.publishBatch([1, 2].map((data) => ({ type, data })));
    await waitFor('stuck holds 2', async () => (await groupStats(bus, type, group)).pending === 2);
    await stuck.close({ drain: false });
    const got: unknown[] = [];
    const live = await bus.subscribe({ group, consumer: 'live', types: [type], claimIdleMs: 300 }, (e) => void got.push(e.data));
    await waitFor('the stuck deliveries reclaimed', () => got.length === 2, 5000);
    const idleSince = Date.now();
    await sleep(12_000); // past the 10 s liveness window, with nothing to read
    const g = await groupStats(bus, type, group);
    assert.ok(Date.now() - idleSince >= 12_000);
    assert.is(g.consumers, 1, 'the idle live consumer counts, the stopped one does not');
    assert.is(g.pending, 0);
    if (a.features.countsConsumers) {
      await waitFor('the stopped consumer removed from the store', async () => (await a.store.consumerRecords!(type, group)) === 1, 20_000, 250);
    }
    await live.close();
    assert.is((await groupStats(bus, type, group)).consumers, 0);
    await bus.close();
  });

  test('health: a store taking writes says so and sizes the topics asked for; a closed bus refuses the call', async () => {
    const bus = await a.make();
    const [one, two, none] = [uniq('size'), uniq('size'), uniq('size')];
    await bus.publishBatch([...[1, 2, 3].map(() => ({ type: one, data: 'x'.repeat(1000) })), { type: two, data: 'y'.repeat(5000) }]);
    const h = await bus.health!({ topics: [one, two, none] });
    assert.is(h.refused, null);
    assert.ok(!h.warnings.some((w) => w.key.startsWith('wal:') || w.key.startsWith('redis-memory:')), JSON.stringify(h.warnings));
    const size = new Map(h.topics.map((t) => [t.type, t.bytes]));
    assert.ok(size.get(one)! >= 3000, `${one}: ${size.get(one)} bytes`);
    assert.ok(size.get(two)! >= 5000, `${two}: ${size.get(two)} bytes`);
    assert.ok((size.get(none) ?? 0) === 0, 'a topic with nothing stored has no size');
    await bus.close();
    await bus.health!().then(() => assert.unreachable('closed'), (err: { code?: string }) => assert.is(err.code, 'BUS_CLOSED'));
  });

  test('a new group at latest on topics holding events logs once how many it skips; earliest, a group that exists, or empty topics log nothing', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const bus = await a.make({ logger });
    const [t1, t2, empty] = [uniq('skip'), uniq('skip'), uniq('skip')];
    await bus.publishBatch([...[1, 2, 3].map((n) => ({ type: t1, data: n })), ...[1, 2].map((n) => ({ type: t2, data: n }))]);
    const late = uniq('late');
    const subs = [
      await bus.subscribe({ group: late, types: [t1, t2, empty] }, () => {}),
      await bus.subscribe({ group: late, types: [t1, t2, empty] }, () => {}),
      await bus.subscribe({ group: uniq('early'), types: [t1, t2], from: 'earliest' }, () => {}),
      await bus.subscribe({ group: uniq('nothing'), types: [empty] }, () => {}),
    ];
    const skips = lines.filter((l) => 'skipped' in l);
    assert.equal(skips.map((l) => [l.level, l.group, l.types, l.skipped]), [[30, late, [t1, t2, empty], 5]]);
    assert.is(skips[0].msg, `new group ${late} starts at the latest event: skipping 5 earlier events of ${t1}, ${t2}, ${empty} (from: 'earliest' reads them)`);
    await Promise.all(subs.map((x) => x.close()));
    await bus.close();
  });

  test.run();
}
