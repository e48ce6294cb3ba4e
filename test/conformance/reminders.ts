// Named delayed events (reminders by name: replace, cancel), the store's listing of pending ones,
// and a cron schedule's ticks once each with three buses storing them (guarantee 5 of the actor
// brief), on every adapter.
import * as assert from 'uvu/assert';
import { rejects, sleep, uniq, waitFor } from '../helpers/index.js';
import { checkSchedules, runSchedule } from '../../runtime/schedules.js';
import type { Target } from './index.js';

export function reminderSuite(a: Target): void {
  const test = a.scenarios('named delayed events and schedules');

  test('a name has one pending event: publishing under it again replaces it atomically, across types too; only the last fires, the replaced ones never, not even those due in the same instant', async () => {
    const bus = await a.make();
    const [one, two] = [uniq('rem'), uniq('rem')];
    const name = uniq('deadline');
    const got: unknown[] = [];
    await bus.subscribe({ group: uniq('g'), types: [one, two], concurrency: 4 }, (e) => void got.push(e.data));
    // Generous: every publish and the listing must be done before the first due time, on a loaded machine.
    const at = Date.now() + 2000;
    await bus.publish(one, 'first', { at, name });
    await bus.publish(one, 'second', { at, name }); // the same due time: the move finds one of them
    await bus.publish(two, 'other type', { at: at - 300, name });
    const last = await bus.publish(one, 'last', { at, name });
    const pending = await bus.schedules!.list();
    assert.equal(pending.filter((p) => p.name === name).map((p) => [p.type, p.event?.id, p.event?.data]), [[one, last, 'last']]);
    await waitFor('the last fired', () => got.length >= 1, 10_000);
    await sleep(800);
    assert.equal(got, ['last']);
    assert.is((await bus.schedules!.list()).filter((p) => p.name === name).length, 0, 'nothing left under the name');
  });

  test('cancel by name removes the pending event whatever its type (true, then false); other names and unnamed events fire; list shows type, due time, name and event; remove by entry id', async () => {
    const bus = await a.make();
    const [one, two] = [uniq('rem'), uniq('rem')];
    const [n1, n2] = [uniq('n'), uniq('n')];
    const got: unknown[] = [];
    await bus.subscribe({ group: uniq('g'), types: [one, two], concurrency: 4 }, (e) => void got.push(e.data));
    const at = Date.now() + 2000;
    await bus.publish(two, 'cancelled', { at, name: n1, subject: 's1' });
    await bus.publish(one, 'named', { at, name: n2 });
    await bus.publish(one, 'unnamed', { at });
    const removed = await bus.publish(one, 'removed', { at: at + 10 });
    const listed = await bus.schedules!.list({ type: one });
    assert.equal(listed.map((p) => [p.event?.data, p.type, p.name, p.dueAt]).sort(), [
      ['named', one, n2, new Date(at).toISOString()],
      ['removed', one, null, new Date(at + 10).toISOString()],
      ['unnamed', one, null, new Date(at).toISOString()],
    ]);
    assert.equal(listed.map((p) => p.dueAt), listed.map((p) => p.dueAt).sort(), 'earliest due first');
    const byName = (await bus.schedules!.list()).find((p) => p.name === n1)!;
    assert.equal([byName.type, byName.event?.subject], [two, 's1']);
    assert.is(await bus.schedules!.cancel(n1), true);
    assert.is(await bus.schedules!.cancel(n1), false, 'nothing pending any more');
    assert.is(await bus.schedules!.cancel(uniq('never')), false);
    const entry = listed.find((p) => p.event?.id === removed)!;
    assert.is(await bus.schedules!.remove([entry.id, entry.id, 'no-such-entry']), 1);
    await waitFor('two fired', () => got.length >= 2, 10_000);
    await sleep(600);
    assert.equal([...got].sort(), ['named', 'unnamed']);
    await rejects(() => bus.schedules!.cancel(''), 'INVALID_OPTION', 'name ""');
    await rejects(() => bus.publish(one, 1, { name: n2 }), 'INVALID_OPTION', 'needs delay or at');
  });

  test('a redelivered handler\'s named publish (derived id) and cancel (with an id) apply once: "cancel, schedule" and "schedule, cancel" run twice leave what one run left', async () => {
    const bus = await a.make();
    const type = uniq('rem');
    const [n1, n2] = [uniq('n'), uniq('n')];
    const got: string[] = [];
    await bus.subscribe({ group: uniq('g'), types: [type] }, (e) => void got.push(e.id));
    const source = '/handler';
    await bus.publish(type, 'old', { delay: 60_000, name: n1 });
    const at = Date.now() + 2000;
    for (let run = 0; run < 2; run++) {
      // One handler, run twice (a redelivery): cancel n1 then schedule n1; schedule n2 then cancel n2.
      assert.is(await bus.schedules!.cancel(n1, { id: 'op-0', source }), true, `run ${run}: the first run's result`);
      await bus.publish(type, 'new', { at, name: n1, id: 'op-1', source });
      await bus.publish(type, 'gone', { at, name: n2, id: 'op-2', source });
      assert.is(await bus.schedules!.cancel(n2, { id: 'op-3', source }), true, `run ${run}: the first run's result`);
    }
    const pending = (await bus.schedules!.list({ type })).map((p) => [p.name, p.event?.id]);
    assert.equal(pending, [[n1, 'op-1']], 'one pending, the rescheduled one');
    await waitFor('fired', () => got.length >= 1, 10_000);
    await sleep(600);
    assert.equal(got, ['op-1']);
  });

  test('a cron schedule (*/2 * * * * *, seconds first) with three buses storing its ticks fires once per tick, never before it', async () => {
    const buses = [await a.make(), await a.make(), await a.make()];
    const type = uniq('cron');
    const agent = uniq('Clock');
    const fired: Array<[string, number]> = [];
    await buses[0].subscribe({ group: uniq('g'), types: [type], concurrency: 4 }, (e) => void fired.push([e.id, Date.now()]));
    const [schedule] = checkSchedules(agent, [{ cron: '*/2 * * * * *', type }]);
    const stops = buses.map((b) => runSchedule(b, agent, schedule, () => {}));
    try {
      await waitFor('three ticks', () => fired.length >= 3, 20_000);
    } finally {
      for (const stop of stops) stop();
    }
    await sleep(500);
    const ticks = fired.map(([, t]) => Math.floor(t / 2000));
    assert.is(new Set(ticks).size, ticks.length, `one event per 2-second tick: ${fired.map(([, t]) => t).join(', ')}`);
    assert.is(new Set(fired.map(([id]) => id)).size, fired.length);
    for (const [, t] of fired) assert.ok(t % 2000 < 1900, `fired ${t % 2000} ms after its tick`);
  });

  test.run();
}
