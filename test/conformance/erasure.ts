// Erasure of keyed handlers' durable records on every adapter: bus.keys.remove (`agentbus state rm`)
// removes a key's ctx.step and ctx.waitFor records with its state, a dead letter's purge removes
// its event's records, and a fresh retry removes them before handing the event back. A step record
// hides from bus.keys.waits, so each scenario also shows it gone through its effect: a new run of
// the same event (or of one with the same source and id: the same record ids) calls the step's
// function again instead of getting the recorded result. An erasure while the owner runs the key
// leaves its handler going: a parked wait still takes its event, a step whose fn is running fails.
import * as assert from 'uvu/assert';
import type { CloudEvent } from '../../bus/event.js';
import type { KeyedDeliveryContext } from '../../bus/keyed/contract.js';
import { uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

export function erasureSuite(a: Target): void {
  const test = a.scenarios('erasure of durable step and wait records');

  test('keys.remove erases the key\'s step and wait records with its state; a key with records only counts as erased; the event run again calls its step again; other keys keep theirs', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    const calls: Record<string, number> = {};
    const parked: string[] = [];
    const opts = { group, types: [task], waitsFor: [granted], key: 'subject' as const, claimIdleMs: 1500, drainTimeoutMs: 200 };
    const handler = async (_e: CloudEvent, c: unknown) => {
      const ctx = c as KeyedDeliveryContext<unknown>;
      const n = await ctx.step('llm', () => (calls[ctx.key] = (calls[ctx.key] ?? 0) + 1));
      parked.push(ctx.key);
      await ctx.waitFor(granted, { timeout: '1h' });
      ctx.state = { n };
    };
    let sub = await bus.subscribe(opts, handler);
    await bus.publish(task, {}, { subject: 'person' });
    await bus.publish(task, {}, { subject: 'other' });
    await waitFor('both parked', () => parked.length === 2, 15_000);
    assert.equal((await bus.keys!.waits(group)).map((w) => w.key).sort(), ['other', 'person']);
    await sub.close(); // the handlers are waiting: given up, their deliveries given back, their records kept
    assert.is(await bus.keys!.remove(group, ['person', 'nobody']), 1, 'person had records (no state yet): erased; nobody had nothing');
    assert.equal((await bus.keys!.waits(group)).map((w) => w.key), ['other'], 'person\'s wait record is gone, other\'s is not');
    assert.is(await bus.keys!.remove(group, ['person']), 0, 'nothing left to erase');
    sub = await bus.subscribe(opts, handler);
    await waitFor('both parked again', () => parked.length === 4, 15_000);
    assert.equal(calls, { person: 2, other: 1 }, 'person\'s step record was erased: its fn ran again; other\'s was replayed');
    await bus.publish(granted, {}, { subject: 'person' });
    await bus.publish(granted, {}, { subject: 'other' });
    await waitFor('both committed', async () => (await bus.keys!.get(group, 'person')) !== null && (await bus.keys!.get(group, 'other')) !== null, 15_000);
    assert.equal((await bus.keys!.get(group, 'person'))!.state, { n: 2 });
    assert.equal((await bus.keys!.get(group, 'other'))!.state, { n: 1 });
    assert.is(await bus.keys!.remove(group, ['person']), 1, 'state only: erased');
    assert.is(await bus.keys!.get(group, 'person'), null);
  });

  test('keys.remove while the owner runs the key: a parked waitFor finds its record gone when its event comes (OWNERSHIP_LOST), runs again and takes the event when it comes again; a step whose fn is running fails (OWNERSHIP_LOST) and its retry calls the fn again', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // claimIdleMs 1.5 s: the awaited event, not acknowledged once its wait's record is gone, comes again after its lease.
    await bus.subscribe({ group, types: [task], waitsFor: [granted], key: 'subject', backoff: { initialMs: 50 }, claimIdleMs: 1500 }, async (_e, c) => {
      const ctx = c as KeyedDeliveryContext<unknown>;
      try {
        if (ctx.key === 'parked') {
          const n = await ctx.step('a', () => ctx.attempt);
          log.push('parked');
          await ctx.waitFor(granted, { timeout: '1h' });
          ctx.state = { n };
        } else {
          const n = await ctx.step('slow', async () => {
            log.push(`slow fn ${ctx.attempt}`);
            if (ctx.attempt === 1) await gate;
            return ctx.attempt;
          });
          ctx.state = { n };
        }
      } catch (err) {
        log.push(`${ctx.key} threw ${(err as { code?: string }).code}`);
        throw err;
      }
    });
    await bus.publish(task, {}, { subject: 'parked' });
    await bus.publish(task, {}, { subject: 'slow' });
    await waitFor('parked, and the slow step running', () => log.includes('parked') && log.includes('slow fn 1'), 15_000);
    assert.is(await bus.keys!.remove(group, ['parked', 'slow']), 2);
    release();
    await bus.publish(granted, {}, { subject: 'parked' });
    await waitFor('both committed', async () => (await bus.keys!.get(group, 'parked')) !== null && (await bus.keys!.get(group, 'slow')) !== null, 15_000);
    assert.equal((await bus.keys!.get(group, 'parked'))!.state, { n: 2 }, 'the run after the erasure took the event, with its own step');
    assert.equal(log.filter((l) => l.startsWith('parked')), ['parked', 'parked threw OWNERSHIP_LOST', 'parked'], 'not acknowledged to a wait whose record was erased: the event came again to the run after');
    assert.equal((await bus.keys!.get(group, 'slow'))!.state, { n: 2 }, 'the retry\'s fn result');
    assert.equal(log.filter((l) => l.startsWith('slow')), ['slow fn 1', 'slow threw OWNERSHIP_LOST', 'slow fn 2']);
  });

  test('dlq purge removes the dead-lettered event\'s step and wait records: an event with the same source and id calls the step again', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const again = uniq('again');
    const granted = uniq('granted');
    const group = uniq('g');
    let calls = 0;
    await bus.subscribe({ group, types: [task, again], waitsFor: [granted], key: 'subject', maxAttempts: 1 }, async (e, c) => {
      const ctx = c as KeyedDeliveryContext<unknown>;
      const n = await ctx.step('llm', () => ++calls);
      await ctx.waitFor(granted, { timeout: 50 }).catch(() => undefined);
      if (e.type === task) throw new Error('dead-lettered after its step and wait');
      ctx.state = { n };
    });
    await bus.publish(task, {}, { subject: 'k', id: 'same-id', source: '/same' });
    await waitFor('dead-lettered', async () => (await bus.deadLetters.list({ group })).length === 1, 15_000);
    assert.is((await bus.keys!.waits(group)).length, 1, 'the dead-lettered run\'s wait record stays');
    const [dl] = await bus.deadLetters.list({ group });
    assert.is(await bus.deadLetters.purge([dl.id]), 1);
    assert.equal(await bus.keys!.waits(group), [], 'its wait record went with the purge');
    await bus.publish(again, {}, { subject: 'k', id: 'same-id', source: '/same' });
    await waitFor('committed', async () => (await bus.keys!.get(group, 'k')) !== null, 15_000);
    assert.equal((await bus.keys!.get(group, 'k'))!.state, { n: 2 }, 'the step record went with the purge: its fn ran again');
  });

  test('dlq retry with fresh removes the event\'s records before handing it back (its step runs again, its wait starts over); without, the retry replays them', async () => {
    const bus = await a.make();
    const task = uniq('task');
    const granted = uniq('granted');
    const group = uniq('g');
    const calls: Record<string, number> = {};
    let failing = true;
    const parked: string[] = [];
    await bus.subscribe({ group, types: [task], waitsFor: [granted], key: 'subject', maxAttempts: 1 }, async (_e, c) => {
      const ctx = c as KeyedDeliveryContext<unknown>;
      const n = await ctx.step('llm', () => (calls[ctx.key] = (calls[ctx.key] ?? 0) + 1));
      if (!failing) parked.push(ctx.key);
      // The deadline is the first run's: 50 ms, long past at a retry that finds the record.
      const r = await ctx.waitFor(granted, { timeout: failing ? 50 : '1h' }).then(() => 'granted', () => 'timed out');
      if (failing) throw new Error('dead-lettered after its step and wait');
      ctx.state = { n, r };
    });
    await bus.publish(task, {}, { subject: 'plain' });
    await bus.publish(task, {}, { subject: 'fresh' });
    await waitFor('dead-lettered', async () => (await bus.deadLetters.list({ group })).length === 2, 15_000);
    const dls = await bus.deadLetters.list({ group });
    const id = (k: string) => dls.find((d) => d.event?.subject === k)!.id;
    failing = false;
    assert.is(await bus.deadLetters.retry([id('plain')]), 1);
    assert.is(await bus.deadLetters.retry([id('fresh')], { fresh: true }), 1);
    await waitFor('plain committed', async () => (await bus.keys!.get(group, 'plain')) !== null, 15_000);
    assert.equal((await bus.keys!.get(group, 'plain'))!.state, { n: 1, r: 'timed out' }, 'recorded step and deadline');
    await waitFor('fresh waits anew', () => parked.includes('fresh'), 15_000);
    await bus.publish(granted, {}, { subject: 'fresh' });
    await waitFor('fresh committed', async () => (await bus.keys!.get(group, 'fresh')) !== null, 15_000);
    assert.equal((await bus.keys!.get(group, 'fresh'))!.state, { n: 2, r: 'granted' }, 'its step ran again, its wait had a new deadline');
    assert.equal(calls, { plain: 1, fresh: 2 });
  });

  test.run();
}
