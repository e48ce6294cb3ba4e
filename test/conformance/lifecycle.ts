import * as assert from 'uvu/assert';
import { assertSameIds, rejects, sleep, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

export function lifecycleSuite(a: Target): void {
  const test = a.scenarios('close');

  test('close drains in-flight handlers and acknowledges them', async () => {
    const bus = await a.make();
    const type = uniq('slow');
    const group = uniq('g');
    let started = 0;
    let finished = 0;
    const sub = await bus.subscribe({ group, types: [type], concurrency: 10 }, async () => {
      started++;
      await sleep(200);
      finished++;
    });
    await bus.publishBatch(Array.from({ length: 10 }, (_, i) => ({ type, data: i })));
    await waitFor('10 started', () => started === 10);
    const stat = async () => (await bus.stats()).find((s) => s.type === type)!.groups.find((x) => x.group === group)!;
    assert.is((await stat()).consumers, 1);
    await sub.close();
    assert.is(finished, 10, 'close resolved before handlers finished');
    const g = await stat();
    assert.is(g.pending, 0);
    assert.is(g.lag, 0);
    assert.is(g.consumers, 0, 'a closed consumer holding nothing is forgotten by the store');
    let again = 0;
    const s2 = await bus.subscribe({ group, types: [type], claimIdleMs: 100 }, () => void again++);
    await sleep(400);
    assert.is(again, 0, 'drained events were delivered again');
    await s2.close();
    await bus.close();
  });

  test('close and reopen a subscription 10 times mid-stream: nothing lost, nothing twice', async () => {
    const bus = await a.make();
    const type = uniq('stream');
    const group = uniq('g');
    const got: string[] = [];
    const ids: string[] = [];
    let publishing = true;
    const publisher = (async () => {
      for (let i = 0; publishing; i++) {
        ids.push(...(await bus.publishBatch(Array.from({ length: 20 }, (_, j) => ({ type, data: i * 20 + j })))));
        await sleep(5);
      }
    })();
    const open = () => bus.subscribe({ group, types: [type], concurrency: 8, from: 'earliest' }, async (e) => {
      await sleep(Math.random() * 2);
      got.push(e.id);
    });
    for (let i = 0; i < 10; i++) {
      const sub = await open();
      await sleep(40);
      await sub.close();
    }
    publishing = false;
    await publisher;
    const last = await open();
    await waitFor(`all ${ids.length} events`, () => got.length >= ids.length, 10_000);
    await sleep(100);
    assertSameIds(got, ids);
    await last.close();
    await bus.close();
  });

  test('10 subscriptions closed concurrently while events flow: the rest reach a new consumer', async () => {
    const bus = await a.make();
    const type = uniq('flow');
    const group = uniq('g');
    const got: string[] = [];
    const subs = await Promise.all(
      Array.from({ length: 10 }, (_, c) => bus.subscribe({ group, consumer: `c${c}`, types: [type], concurrency: 4 }, async (e) => {
        await sleep(1);
        got.push(e.id);
      })),
    );
    const publishing = bus.publishBatch(Array.from({ length: 2000 }, (_, i) => ({ type, data: i })));
    await sleep(20);
    await Promise.all(subs.map((s) => s.close()));
    const ids = await publishing;
    const tail = await bus.subscribe({ group, types: [type], concurrency: 16 }, (e) => void got.push(e.id));
    await waitFor('2000 events', () => got.length >= 2000, 15_000);
    await sleep(100);
    assertSameIds(got, ids);
    await tail.close();
    await bus.close();
  });

  test('a handler drained by bus.close() can still publish its follow-up event', async () => {
    const bus = await a.make();
    const type = uniq('step');
    let started = false;
    let followUp: Promise<string> | null = null;
    await bus.subscribe({ group: uniq('g'), types: [type] }, async () => {
      started = true;
      await sleep(150);
      followUp = bus.publish(`${type}.done`, { ok: true });
      await followUp;
    });
    await bus.publish(type, 1);
    await waitFor('handler started', () => started);
    await bus.close();
    assert.ok(followUp !== null, 'the handler did not run to its publish');
    assert.type(await followUp!, 'string');
  });

  test('a publish in flight at close completes; publish, subscribe and replay after close reject BUS_CLOSED', async () => {
    const bus = await a.make();
    const type = uniq('late');
    const inflight = bus.publish(type, 'raced close');
    const closed = bus.close();
    assert.type(await inflight, 'string');
    await closed;
    await rejects(() => bus.publish(type, 1), 'BUS_CLOSED', type);
    await rejects(() => bus.publishBatch([{ type, data: 1 }]), 'BUS_CLOSED');
    await rejects(() => bus.subscribe({ group: 'g', types: [type] }, () => {}), 'BUS_CLOSED');
    await rejects(() => bus.replay({ types: [type] }, () => {}), 'BUS_CLOSED');
    await bus.close(); // idempotent
  });

  test.run();
}
