// Keyed subscriptions (guarantees 1-3 and 8 of the actor brief) on every adapter: one handler per
// key at a time, a key's events in publish order, state committed with the acknowledgement and
// surviving restarts, takeover by a standby, passivation.
import * as assert from 'uvu/assert';
import type { Bus, Subscription } from '../../bus/contract.js';
import type { KeyedDeliveryContext } from '../../bus/keyed/contract.js';
import { MAX_UNCOMMITTED } from '../../bus/keyed/owner.js';
import { uniq, waitFor, sleep } from '../helpers/index.js';
import type { Target } from './index.js';

type Seen = { seq: number[] };

/** Publishes `perKey` events for each of `keys` keys, interleaved, data { k, n } with n in 0..perKey-1 per key. */
export async function publishKeyed(bus: Bus, type: string, keys: number, perKey: number, prefix = 'k'): Promise<void> {
  const all: Array<{ type: string; data: { k: string; n: number }; subject: string }> = [];
  for (let n = 0; n < perKey; n++) for (let k = 0; k < keys; k++) all.push({ type, data: { k: `${prefix}${k}`, n }, subject: `${prefix}${k}` });
  for (let i = 0; i < all.length; i += 500) await bus.publishBatch(all.slice(i, i + 500));
}

/** Each key's state must hold exactly 0..perKey-1, in order: every event applied once, in publish order. */
export async function assertSequences(bus: Bus, group: string, keys: number, perKey: number, prefix = 'k'): Promise<void> {
  const want = Array.from({ length: perKey }, (_, i) => i);
  for (let k = 0; k < keys; k++) {
    const s = await bus.keys!.get(group, `${prefix}${k}`);
    assert.ok(s !== null, `key ${prefix}${k} has state`);
    assert.equal((s!.state as Seen).seq, want, `key ${prefix}${k}: applied once each, in publish order`);
  }
}

/** A counting handler that appends each event's n to its key's state and checks one handler per key at a time. */
function counter(inFlight: Map<string, number>, overlaps: { n: number }, delayMs = 0) {
  return async (e: { data: unknown }, ctx: KeyedDeliveryContext<Seen | null>) => {
    const n = (inFlight.get(ctx.key) ?? 0) + 1;
    inFlight.set(ctx.key, n);
    if (n > 1) overlaps.n++;
    try {
      if (delayMs > 0) await sleep(Math.random() * delayMs);
      ctx.state ??= { seq: [] };
      ctx.state.seq.push((e.data as { n: number }).n);
    } finally {
      inFlight.set(ctx.key, inFlight.get(ctx.key)! - 1);
    }
  };
}

export function keyedSuite(a: Target): void {
  const test = a.scenarios('keyed subscriptions');

  test('20 keys x 50 events at concurrency 16: one handler per key at a time, each key in publish order, state stored', async () => {
    const bus = await a.make();
    const type = uniq('kc');
    const group = uniq('g');
    const inFlight = new Map<string, number>();
    const overlaps = { n: 0 };
    let handled = 0;
    const count = counter(inFlight, overlaps, 3);
    await bus.subscribe({ group, types: [type], key: 'subject', concurrency: 16, from: 'earliest' }, async (e, ctx) => {
      await count(e, ctx as KeyedDeliveryContext<Seen | null>);
      handled++;
    });
    await publishKeyed(bus, type, 20, 50);
    await waitFor('1000 handled', () => handled >= 1000, 30_000);
    assert.is(overlaps.n, 0, 'never two handlers of one key at once');
    // Every key, not only the last one published: the last events of two keys can land in two commits.
    await waitFor('committed', async () => {
      for (let k = 0; k < 20; k++) if (((await bus.keys!.get(group, `k${k}`))?.state as Seen | undefined)?.seq.length !== 50) return false;
      return true;
    }, 10_000);
    await assertSequences(bus, group, 20, 50);
  });

  test('state survives a restart of the subscription and keeps counting', async () => {
    const bus = await a.make();
    const type = uniq('kr');
    const group = uniq('g');
    const overlaps = { n: 0 };
    let sub = await bus.subscribe({ group, types: [type], key: 'subject', concurrency: 4 }, counter(new Map(), overlaps) as never);
    await publishKeyed(bus, type, 3, 10);
    await waitFor('first half committed', async () => ((await bus.keys!.get(group, 'k2'))?.state as Seen | undefined)?.seq.length === 10, 15_000);
    await sub.close();
    const all: Array<{ type: string; data: { k: string; n: number }; subject: string }> = [];
    for (let n = 10; n < 20; n++) for (let k = 0; k < 3; k++) all.push({ type, data: { k: `k${k}`, n }, subject: `k${k}` });
    await bus.publishBatch(all);
    sub = await bus.subscribe({ group, types: [type], key: 'subject', concurrency: 4 }, counter(new Map(), overlaps) as never);
    await waitFor('second half committed', async () => ((await bus.keys!.get(group, 'k2'))?.state as Seen | undefined)?.seq.length === 20, 15_000);
    await assertSequences(bus, group, 3, 20);
  });

  // Several buses on one store: not SQLite :memory: (private to its connection).
  if (a.features.sharedAcrossProcesses) test('two consumers racing on one group: no lost update, never two handlers of a key at once, one owner', async () => {
    const type = uniq('krace');
    const group = uniq('g');
    const inFlight = new Map<string, number>();
    const overlaps = { n: 0 };
    const by = new Map<string, number>();
    const buses = [await a.make(), await a.make()];
    const subs: Subscription[] = [];
    for (const [i, b] of buses.entries()) {
      const count = counter(inFlight, overlaps, 2);
      subs.push(await b.subscribe({ group, types: [type], key: 'subject', concurrency: 8, claimIdleMs: 1000, from: 'earliest' }, async (e, ctx) => {
        by.set(`c${i}`, (by.get(`c${i}`) ?? 0) + 1);
        await count(e, ctx as KeyedDeliveryContext<Seen | null>);
      }));
    }
    await publishKeyed(buses[0], type, 10, 40);
    await waitFor('all committed', async () => {
      for (let k = 0; k < 10; k++) if (((await buses[0].keys!.get(group, `k${k}`))?.state as Seen | undefined)?.seq.length !== 40) return false;
      return true;
    }, 30_000, 100);
    await assertSequences(buses[0], group, 10, 40);
    assert.is(overlaps.n, 0);
    assert.is(by.size, 1, 'one consumer owns the group; the other stands by');
  });

  // Several buses on one store: not SQLite :memory: (private to its connection).
  if (a.features.sharedAcrossProcesses) test('the owner closing hands the group to a standby, which goes on from the committed state', async () => {
    const type = uniq('khand');
    const group = uniq('g');
    const first = await a.make();
    const second = await a.make();
    const overlaps = { n: 0 };
    const inFlight = new Map<string, number>();
    const s1 = await first.subscribe({ group, types: [type], key: 'subject', concurrency: 4, claimIdleMs: 600, from: 'earliest' }, counter(inFlight, overlaps) as never);
    await second.subscribe({ group, types: [type], key: 'subject', concurrency: 4, claimIdleMs: 600, from: 'earliest' }, counter(inFlight, overlaps) as never);
    await publishKeyed(first, type, 4, 25);
    await waitFor('some handled', async () => (((await first.keys!.get(group, 'k0'))?.state as Seen | undefined)?.seq.length ?? 0) > 0, 15_000);
    await s1.close();
    await waitFor('all committed', async () => {
      for (let k = 0; k < 4; k++) if (((await second.keys!.get(group, `k${k}`))?.state as Seen | undefined)?.seq.length !== 25) return false;
      return true;
    }, 20_000, 50);
    await assertSequences(second, group, 4, 25);
    assert.is(overlaps.n, 0);
  });

  // The README's promise for a graceful stop (SIGTERM): the closing owner gives its lease back
  // (owner.release), so a standby takes the group on its next try (every claimIdleMs/3, at most
  // every second), not once the lease would have run out. claimIdleMs is the default, 30 s: a
  // takeover by expiry would come 20 s or more after the close, past this wait.
  if (a.features.sharedAcrossProcesses) test('a closing owner gives its lease back: a standby runs the group\'s next event within seconds, not claimIdleMs (30 s) later', async () => {
    const type = uniq('krelease');
    const group = uniq('g');
    const first = await a.make();
    const second = await a.make();
    const got: string[] = [];
    const o = { group, types: [type], key: 'subject' as const, claimIdleMs: 30_000, from: 'earliest' as const };
    const s1 = await first.subscribe(o, (e) => void got.push(`first ${String(e.data)}`));
    await first.publish(type, 1, { subject: 'k' });
    await waitFor('the first consumer owns the group and handled 1', () => got.length === 1, 15_000);
    await second.subscribe(o, (e) => void got.push(`second ${String(e.data)}`));
    await s1.close();
    await first.publish(type, 2, { subject: 'k' });
    await waitFor('the standby took the group over and handled 2', () => got.length === 2, 12_000);
    assert.equal(got, ['first 1', 'second 2']);
  });

  // Several buses on one store: not SQLite :memory: (private to its connection).
  if (a.features.sharedAcrossProcesses) test('an owner that stops renewing (abandoned mid-handler): the standby takes its deliveries over in order', async () => {
    const type = uniq('kaband');
    const group = uniq('g');
    const first = await a.make();
    const second = await a.make();
    let hang = true;
    const s1 = await first.subscribe({ group, types: [type], key: 'subject', concurrency: 4, claimIdleMs: 500 }, async (e, ctx) => {
      const c = ctx as KeyedDeliveryContext<Seen | null>;
      if (hang && (e.data as { n: number }).n === 3) return new Promise(() => {}); // in flight when its owner goes
      c.state ??= { seq: [] };
      c.state.seq.push((e.data as { n: number }).n);
    });
    await publishKeyed(first, type, 2, 10);
    await waitFor('first committed up to 3', async () => ((await first.keys!.get(group, 'k1'))?.state as Seen | undefined)?.seq.length === 3, 15_000);
    hang = false;
    await s1.close({ drain: false });
    await second.subscribe({ group, types: [type], key: 'subject', concurrency: 4, claimIdleMs: 500 }, counter(new Map(), { n: 0 }) as never);
    await waitFor('all committed', async () => {
      for (let k = 0; k < 2; k++) if (((await second.keys!.get(group, `k${k}`))?.state as Seen | undefined)?.seq.length !== 10) return false;
      return true;
    }, 20_000, 50);
    await assertSequences(second, group, 2, 10);
  });

  test('a standby waiting for its keyed group does not pile up abort listeners (no MaxListenersExceededWarning)', async () => {
    const bus = await a.make();
    const type = uniq('kstandby');
    const group = uniq('g');
    const warnings: string[] = [];
    const onWarning = (w: Error) => void (w.name === 'MaxListenersExceededWarning' && warnings.push(w.message));
    process.on('warning', onWarning);
    try {
      const o = { group, types: [type], key: 'subject' as const, claimIdleMs: 150 };
      await bus.subscribe({ ...o, consumer: 'first' }, () => {});
      await bus.subscribe({ ...o, consumer: 'second' }, () => {});
      // One owns the group; the other asks for it again every claimIdleMs / 3: some 30 waits.
      await sleep(1500);
      assert.equal(warnings, []);
    } finally {
      process.off('warning', onWarning);
    }
  });

  test('a failing event holds back only its own key, is retried, and its changes are undone before the retry', async () => {
    const bus = await a.make();
    const type = uniq('kfail');
    const group = uniq('g');
    let failed = 0;
    const order: string[] = [];
    await bus.subscribe({ group, types: [type], key: 'subject', concurrency: 4, backoff: { initialMs: 200, maxMs: 200 } }, async (e, ctx) => {
      const c = ctx as KeyedDeliveryContext<Seen | null>;
      const n = (e.data as { n: number }).n;
      c.state ??= { seq: [] };
      c.state.seq.push(n);
      if (e.subject === 'k0' && n === 1 && failed++ === 0) throw new Error('once');
      order.push(`${e.subject}:${n}`);
    });
    await publishKeyed(bus, type, 2, 4);
    await waitFor('8 handled', () => order.length === 8, 10_000);
    assert.ok(order.indexOf('k1:3') < order.indexOf('k0:1'), 'the other key went on while k0 waited for its retry');
    assert.equal(order.filter((o) => o.startsWith('k0')), ['k0:0', 'k0:1', 'k0:2', 'k0:3']);
    await waitFor('committed', async () => ((await bus.keys!.get(group, 'k0'))?.state as Seen | undefined)?.seq.length === 4, 10_000);
    await assertSequences(bus, group, 2, 4);
  });

  test('a state over maxStateBytes is a dead letter state_too_large and the key keeps its state; an event with no key is a dead letter no_key', async () => {
    const bus = await a.make();
    const type = uniq('kbig');
    const group = uniq('g');
    let calls = 0;
    await bus.subscribe({ group, types: [type], key: 'subject', maxStateBytes: 100 }, (e, ctx) => {
      calls++;
      (ctx as KeyedDeliveryContext<unknown>).state = e.data;
    });
    await bus.publish(type, { small: 1 }, { subject: 'a' });
    await bus.publish(type, { big: 'x'.repeat(200) }, { subject: 'a' });
    await bus.publish(type, { nokey: true });
    await waitFor('two dead letters', async () => (await bus.deadLetters.list({ group })).length === 2, 10_000);
    const dls = await bus.deadLetters.list({ group });
    assert.equal(dls.map((d) => d.reason).sort(), ['no_key', 'state_too_large']);
    assert.match(dls.find((d) => d.reason === 'state_too_large')!.error, /over maxStateBytes 100/);
    // The first event's commit is batched and may land after the second one's dead letter.
    await waitFor("a's first state committed", async () => (await bus.keys!.get(group, 'a')) !== null, 10_000);
    assert.equal((await bus.keys!.get(group, 'a'))!.state, { small: 1 });
    assert.is(calls, 2, 'the event without a key never reached the handler');
  });

  test('passivation: 2,000 keys with maxActiveKeys 50 stay within the bound in memory and reload their state', async () => {
    const bus = await a.make();
    const type = uniq('kpass');
    const group = uniq('g');
    let handled = 0;
    const sub = await bus.subscribe({ group, types: [type], key: 'subject', concurrency: 32, maxActiveKeys: 50 }, (e, ctx) => {
      const c = ctx as KeyedDeliveryContext<Seen | null>;
      c.state ??= { seq: [] };
      c.state.seq.push((e.data as { n: number }).n);
      handled++;
    });
    const stats = () => sub.keyedStats!()!;
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, stats().activeKeys)), 5);
    await publishKeyed(bus, type, 2000, 1);
    await waitFor('2000 handled', () => handled >= 2000, 30_000);
    await publishKeyed(bus, type, 20, 2); // n 0 and 1 again for k0..k19
    await waitFor('2040 handled', () => handled >= 2040, 15_000);
    clearInterval(watch);
    // Keys in use are never evicted: held by a delivery (at most concurrency) or changed and not yet committed (at most MAX_UNCOMMITTED).
    assert.ok(most <= 50 + 32 + MAX_UNCOMMITTED, `cache peaked at ${most} keys (bound 50, plus keys in use)`);
    assert.ok(stats().evictions >= 1900, `evicted ${stats().evictions}`);
    await waitFor('committed', async () => {
      for (let k = 0; k < 20; k++) if (((await bus.keys!.get(group, `k${k}`))?.state as Seen | undefined)?.seq.length !== 3) return false;
      return true;
    }, 10_000);
    await waitFor('back within maxActiveKeys once committed', () => stats().activeKeys <= 50, 10_000);
    assert.equal(((await bus.keys!.get(group, 'k0'))!.state as Seen).seq, [0, 0, 1], 'reloaded from the store, not restarted from empty');
  });

  test('bus.keys lists, gets and erases state; an erased key starts again from initialState', async () => {
    const bus = await a.make();
    const type = uniq('kadm');
    const group = uniq('g');
    let handled = 0;
    await bus.subscribe({ group, types: [type], key: (e) => (e.data as { user: string }).user, initialState: (k) => ({ user: k, n: 0 }) }, (_e, ctx) => {
      (ctx as KeyedDeliveryContext<{ n: number }>).state.n++;
      handled++;
    });
    await bus.publishBatch(['u1', 'u2', 'u2', 'u3'].map((user) => ({ type, data: { user } })));
    await waitFor('handled', () => handled === 4, 10_000);
    await waitFor('committed', async () => ((await bus.keys!.get(group, 'u2'))?.state as { n: number } | undefined)?.n === 2, 10_000);
    const listed = await bus.keys!.list(group);
    assert.equal(listed.map((r) => r.key), ['u1', 'u2', 'u3']);
    assert.ok(listed.every((r) => r.bytes > 0 && r.version >= 1));
    assert.equal((await bus.keys!.list(group, { after: 'u1', limit: 1 })).map((r) => r.key), ['u2']);
    assert.ok((await bus.keys!.groups()).includes(group));
    assert.is(await bus.keys!.remove(group, ['u2', 'nobody']), 1);
    assert.is(await bus.keys!.get(group, 'u2'), null);
    await bus.publish(type, { user: 'u2' });
    await waitFor('recounted', async () => ((await bus.keys!.get(group, 'u2'))?.state as { n: number } | undefined)?.n === 1, 10_000);
  });

  test('a handler setting the state to null removes it: bus.keys has none and the next event starts from initialState', async () => {
    const bus = await a.make();
    const type = uniq('knull');
    const group = uniq('g');
    const seen: unknown[] = [];
    await bus.subscribe({ group, types: [type], key: 'subject', initialState: () => ({ n: 0 }) }, (e, ctx) => {
      const c = ctx as KeyedDeliveryContext<{ n: number } | null>;
      seen.push(structuredClone(c.state));
      c.state = e.data === 'end' ? null : { n: c.state!.n + 1 };
    });
    await bus.publishBatch(['add', 'add', 'end'].map((data) => ({ type, data, subject: 'x' })));
    await waitFor('removed', async () => seen.length === 3 && (await bus.keys!.get(group, 'x')) === null, 10_000);
    await bus.publish(type, 'add', { subject: 'x' });
    await waitFor('4 handled', () => seen.length === 4, 10_000);
    assert.equal(seen, [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 0 }]);
    await waitFor('stored again', async () => ((await bus.keys!.get(group, 'x'))?.state as { n: number } | undefined)?.n === 1, 10_000);
  });

  test('stateTtlMs: a key unchanged for that long has no state: its next event starts from initialState (no conflict), and a closed group whose state expired is no longer listed', async () => {
    const bus = await a.make();
    const type = uniq('kttl');
    const group = uniq('g');
    const seen: number[] = [];
    const sub = await bus.subscribe({ group, types: [type], key: 'subject', stateTtlMs: 1000, initialState: () => ({ n: 0 }) }, (_e, ctx) => {
      const c = ctx as KeyedDeliveryContext<{ n: number }>;
      seen.push(c.state.n);
      c.state.n++;
    });
    await bus.publish(type, {}, { subject: 't1' });
    await waitFor('t1 committed', async () => ((await bus.keys!.get(group, 't1'))?.state as { n: number } | undefined)?.n === 1, 10_000);
    await waitFor('t1 expired', async () => (await bus.keys!.get(group, 't1')) === null, 15_000);
    assert.equal(await bus.keys!.list(group), [], 'an expired key is not listed');
    await bus.publish(type, {}, { subject: 't1' });
    await waitFor('t1 handled again', () => seen.length === 2, 10_000);
    assert.equal(seen, [0, 0], 'the expired state is not handed to the handler: it starts from initialState');
    await waitFor('t1 committed again', async () => ((await bus.keys!.get(group, 't1'))?.state as { n: number } | undefined)?.n === 1, 10_000);
    assert.is(sub.keyedStats!()!.conflicts, 0, 'the owner did not commit over the expired record');
    await sub.close();
    await waitFor('t1 expired again', async () => (await bus.keys!.get(group, 't1')) === null, 15_000);
    assert.not.ok((await bus.keys!.groups()).includes(group), 'no owner and no state left: the group is not listed');
  });

  test('stateTtlMs back to 0: a key written under a TTL keeps its state from its next change on, over several commits', async () => {
    const bus = await a.make();
    const type = uniq('kttl0');
    const group = uniq('g');
    const count = (_e: unknown, ctx: unknown) => {
      const c = ctx as KeyedDeliveryContext<{ n: number }>;
      c.state.n++;
    };
    const n = async () => ((await bus.keys!.get(group, 'p1'))?.state as { n: number } | undefined)?.n;
    const ttl = await bus.subscribe({ group, types: [type], key: 'subject', stateTtlMs: 1500, initialState: () => ({ n: 0 }) }, count);
    await bus.publish(type, {}, { subject: 'p1' });
    await waitFor('written under the TTL', async () => (await n()) === 1, 10_000);
    const ttlWritten = Date.now();
    await ttl.close();
    await bus.subscribe({ group, types: [type], key: 'subject', initialState: () => ({ n: 0 }) }, count);
    for (const want of [2, 3, 4]) {
      // One event per commit: the first one after the load clears the expiry, the later ones find none.
      await bus.publish(type, {}, { subject: 'p1' });
      await waitFor(`n = ${want}`, async () => (await n()) === want, 10_000);
    }
    await sleep(Math.max(0, ttlWritten + 3000 - Date.now()));
    assert.is(await n(), 4, 'the record did not expire with the TTL it was first written under');
  });

  test.run();
}
