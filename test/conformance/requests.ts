// Request/reply (guarantee 7 of the actor brief) on every adapter: the reply is the handler's return
// value (or ctx.reply), reaches the requesting bus among several, never waits behind the requester's
// own key, and a request nobody answers fails with RequestTimeoutError.
import * as assert from 'uvu/assert';
import { RequestTimeoutError } from '../../bus/errors.js';
import type { KeyedDeliveryContext } from '../../bus/keyed/contract.js';
import { uniq, waitFor, sleep } from '../helpers/index.js';
import type { Target } from './index.js';

export function requestSuite(a: Target): void {
  const test = a.scenarios('request/reply');

  test('the handler\'s return value (or ctx.reply) is the reply; the request carries correlationid and replyto', async () => {
    const bus = await a.make();
    const type = uniq('ask');
    const seen: Array<{ correlationid?: string; replyto?: string }> = [];
    await bus.subscribe({ group: uniq('g'), types: [type], concurrency: 8 }, (e, ctx) => {
      seen.push({ correlationid: e.correlationid, replyto: e.replyto });
      const n = (e.data as { n: number }).n;
      if (n === 0) return void ctx.reply({ via: 'ctx' });
      return { double: n * 2 };
    });
    const replies = await Promise.all([0, 1, 2, 3].map((n) => bus.request(type, { n }, { timeoutMs: 10_000 })));
    assert.equal(replies, [{ via: 'ctx' }, { double: 2 }, { double: 4 }, { double: 6 }]);
    assert.is(new Set(seen.map((s) => s.correlationid)).size, 4);
    assert.ok(seen.every((s) => s.replyto?.startsWith('agentbus.reply.')));
  });

  test('nobody answers: RequestTimeoutError after timeoutMs; a late reply is dropped and counted (Bus.observe), and later requests still work', async () => {
    const bus = await a.make();
    const type = uniq('slow');
    const told: string[] = [];
    const unobserve = bus.observe!({
      requestSent: (t) => told.push(`sent ${t === type}`),
      requestEnded: (r) => told.push(`${r.outcome} ${r.type === type} ${r.durationMs >= 0}`),
      replyDropped: () => told.push('dropped'),
    });
    let slow = true;
    await bus.subscribe({ group: uniq('g'), types: [type], concurrency: 4 }, async (e) => {
      if (slow) await sleep(600);
      return e.data;
    });
    const started = Date.now();
    const err = await bus.request(type, 'first', { timeoutMs: 200 }).then(() => null, (x: unknown) => x);
    assert.ok(err instanceof RequestTimeoutError, `got ${String(err)}`);
    assert.ok(Date.now() - started >= 190);
    slow = false;
    await waitFor('the late reply to the first request dropped', () => told.includes('dropped'), 10_000);
    assert.is(await bus.request(type, 'second', { timeoutMs: 10_000 }), 'second');
    assert.equal(told, ['sent true', 'timed_out true true', 'dropped', 'sent true', 'replied true true']);
    unobserve();
    await bus.request(type, 'third', { timeoutMs: 10_000 });
    assert.is(told.length, 5, 'nothing told once unobserved');
  });

  test('a keyed handler awaiting a reply does not deadlock its key: the reply comes on its own topic', async () => {
    const bus = await a.make();
    const ask = uniq('tool');
    const start = uniq('task');
    const group = uniq('planner');
    await bus.subscribe({ group: uniq('tool'), types: [ask] }, (e) => ({ result: `done ${(e.data as { step: number }).step}` }));
    await bus.subscribe({ group, types: [start], key: 'subject', concurrency: 4 }, async (e, ctx) => {
      const c = ctx as KeyedDeliveryContext<{ results: string[] } | null>;
      const r = await bus.request<{ result: string }>(ask, { step: (e.data as { step: number }).step }, { subject: c.key, timeoutMs: 10_000 });
      c.state = { results: [...(c.state?.results ?? []), r.result] };
    });
    await bus.publishBatch([0, 1, 2].map((step) => ({ type: start, data: { step }, subject: 'task-1' })));
    await waitFor('three replies in the key state', async () => ((await bus.keys!.get(group, 'task-1'))?.state as { results: string[] } | undefined)?.results.length === 3, 15_000);
    assert.equal(((await bus.keys!.get(group, 'task-1'))!.state as { results: string[] }).results, ['done 0', 'done 1', 'done 2']);
  });

  if (a.features.sharedAcrossProcesses) {
    test('two requesting buses and one responder bus on one store: each reply reaches the bus that asked', async () => {
      const [r1, r2, responder] = [await a.make(), await a.make(), await a.make()];
      const type = uniq('who');
      await responder.subscribe({ group: uniq('g'), types: [type], concurrency: 16 }, (e) => e.data);
      const asks = Array.from({ length: 20 }, (_, i) => (i % 2 ? r1 : r2).request(type, { i }, { timeoutMs: 15_000 }));
      assert.equal(await Promise.all(asks), Array.from({ length: 20 }, (_, i) => ({ i })));
    });
  }

  test.run();
}
