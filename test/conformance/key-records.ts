// One key's durable wait and step records among many other keys' on every adapter: listed alone
// (bus.keys.waits / steps with `key`: `agentbus state get`, `state waits --key`) and erased alone
// (bus.keys.remove: `state rm`), and a record past its expiry neither listed nor counted as erased.
// The expiry (a day past a wait's deadline in production) is reached through the adapter's state
// store directly, with a short time to live.
import * as assert from 'uvu/assert';
import type { CloudEvent } from '../../bus/event.js';
import type { KeyedDeliveryContext } from '../../bus/keyed/contract.js';
import { uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

/** Keys holding records besides the one looked at. */
const OTHERS = 60;

export function keyRecordSuite(a: Target): void {
  const test = a.scenarios('one key\'s wait and step records among many keys');

  test(`with ${OTHERS} other keys holding a step and a wait each, one key's records are listed alone, erased alone, and the others stay`, async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    const parked = new Set<string>();
    const sub = await bus.subscribe({ group, types: [task], waitsFor: [granted], key: 'subject', concurrency: 8, drainTimeoutMs: 200 }, async (_e: CloudEvent, c: unknown) => {
      const ctx = c as KeyedDeliveryContext<unknown>;
      await ctx.step('fetch', () => `got ${ctx.key}`);
      parked.add(ctx.key);
      await ctx.waitFor(granted, { timeout: '1h' });
    });
    const keys = Array.from({ length: OTHERS + 1 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    for (const k of keys) await bus.publish(task, {}, { subject: k });
    await waitFor('every key parked', () => parked.size === keys.length, 30_000);
    await sub.close(); // the handlers are waiting: given up, their records kept
    const one = 'k07';
    assert.equal((await bus.keys!.waits(group, { key: one })).map((w) => [w.key, w.type, w.matched]), [[one, granted, false]]);
    assert.equal((await bus.keys!.steps(group, { key: one })).map((s) => [s.key, s.name, s.result]), [[one, 'fetch', `got ${one}`]]);
    assert.is(await bus.keys!.remove(group, [one]), 1, 'records only (no state yet): erased');
    assert.equal(await bus.keys!.waits(group, { key: one }), []);
    assert.equal(await bus.keys!.steps(group, { key: one }), []);
    assert.is(await bus.keys!.remove(group, [one]), 0, 'nothing left');
    const rest = keys.filter((k) => k !== one);
    assert.equal((await bus.keys!.waits(group, { limit: 1000 })).map((w) => w.key), rest, 'the other keys\' waits stay');
    assert.equal((await bus.keys!.steps(group, { limit: 1000 })).map((s) => s.result), rest.map((k) => `got ${k}`), 'and their steps');
    assert.equal((await bus.keys!.waits(group, { key: 'k08' })).map((w) => w.key), ['k08']);
  });

  test('a wait record past its expiry is not listed (by key or for the group) and does not count as erased; a live one beside it is and does', async () => {
    const { store, close } = await a.store.stateStore();
    try {
      const group = uniq('g');
      const far = Date.now() + 3_600_000;
      await store.openWait(group, 'live', { type: 'x.granted', key: 'k', deadline: far }, 60_000);
      for (let i = 0; i < 20; i++) await store.openWait(group, `other-${i}`, { type: 'x.granted', key: `other-${i}`, deadline: far }, 60_000);
      // Already past its deadline: expires 600 ms from now.
      await store.openWait(group, 'short', { type: 'x.granted', key: 'k', deadline: Date.now() - 1000 }, 1600);
      await store.openWait(group, 'short-2', { type: 'x.granted', key: 'k2', deadline: Date.now() - 1000 }, 1600);
      const ofKey = async (key: string) => (await store.listWaits(group, { key, limit: 100, steps: false })).map((w) => w.id);
      assert.equal((await ofKey('k')).sort(), ['live', 'short'], 'both listed before the expiry');
      await waitFor('the short record expired', async () => (await ofKey('k')).join() === 'live', 10_000);
      const all = await store.listWaits(group, { limit: 100, steps: false });
      assert.ok(!all.some((w) => w.id === 'short' || w.id === 'short-2'), `expired records not in the group's listing: ${all.map((w) => w.id).join()}`);
      assert.is(all.length, 21);
      assert.equal(await ofKey('k2'), []);
      assert.is(await store.remove(group, ['k2']), 0, 'a key with only an expired record has nothing to erase');
      assert.is(await store.remove(group, ['k']), 1);
      assert.equal(await ofKey('k'), []);
      assert.is((await store.listWaits(group, { limit: 100, steps: false })).length, 20, 'the other keys\' records stay');
    } finally {
      await close();
    }
  });

  test.run();
}
