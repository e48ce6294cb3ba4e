// Request/reply (guarantee 7 of the actor brief) on every adapter: the reply is the handler's return
// value (or ctx.reply), reaches the requesting bus among several, never waits behind the requester's
// own key, and a request nobody answers fails with RequestTimeoutError.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import * as assert from 'uvu/assert';
import type { Bus } from '../../bus/contract.js';
import { NonRetryableError, RequestFailedError, RequestTimeoutError } from '../../bus/errors.js';
import type { KeyedDeliveryContext } from '../../bus/keyed/contract.js';
import { keyedReplyTopic } from '../../bus/event.js';
import { uniq, waitFor, sleep } from '../helpers/index.js';
import type { Target } from './index.js';
import { startChild } from './processes.js';

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

  test('a request of a type no group reads logs one warning per type per bus (bus.request and a durable ctx.request); a type a group reads none', async () => {
    const lines: Array<{ msg: string; type?: string }> = [];
    const bus = await a.make({ logger: pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s)) }) });
    const [nobody, durable, served, task] = [uniq('nobody'), uniq('nobody-durable'), uniq('served'), uniq('task')];
    await bus.subscribe({ group: uniq('tool'), types: [served] }, () => 'ok');
    await bus.subscribe({ group: uniq('g'), types: [task], key: 'subject' }, async (_e, c) => {
      const ctx = c as KeyedDeliveryContext<unknown>;
      await ctx.request(durable, {}, { timeoutMs: 60_000 }).catch(() => {});
    });
    const timedOut = (p: Promise<unknown>) => p.then(() => 'replied', (err: unknown) => (err instanceof RequestTimeoutError ? 'timed out' : String(err)));
    assert.equal(await Promise.all([timedOut(bus.request(nobody, {}, { timeoutMs: 300 })), timedOut(bus.request(nobody, {}, { timeoutMs: 300 }))]), ['timed out', 'timed out']);
    assert.is(await bus.request(served, {}, { timeoutMs: 10_000 }), 'ok');
    await bus.publish(task, {}, { subject: 'k' });
    const said = (type: string) => lines.filter((l) => l.msg === `no group reads ${type}: the request will time out unless one starts`);
    await waitFor('both warnings', () => said(nobody).length > 0 && said(durable).length > 0, 15_000);
    assert.is(await timedOut(bus.request(nobody, {}, { timeoutMs: 300 })), 'timed out');
    await sleep(300);
    assert.is(said(nobody).length, 1, 'once per type');
    assert.is(said(durable).length, 1);
    assert.is(said(served).length, 0, 'a type a group reads is not warned of');
  });

  test('a request dead-lettered by its handler\'s group fails at once with RequestFailedError (group, reason, error), not after timeoutMs; a pattern group\'s failure does not', async () => {
    const bus = await a.make();
    const prefix = uniq('fails');
    const group = uniq('tool');
    const ended: string[] = [];
    bus.observe!({ requestEnded: (r) => ended.push(r.outcome) });
    // Throws on every request through a pattern: its dead letters must not fail the requests it took unasked.
    await bus.subscribe({ group: uniq('audit'), types: [`${prefix}.*`], maxAttempts: 1 }, () => {
      throw new NonRetryableError('audit broke');
    });
    await bus.subscribe({ group, types: [`${prefix}.run`, `${prefix}.refuse`, `${prefix}.ok`], maxAttempts: 2, backoff: { initialMs: 10 } }, async (e, ctx) => {
      if (e.type.endsWith('.ok')) {
        await sleep(300); // after the audit group's dead letter
        return 'fine';
      }
      if (e.type.endsWith('.refuse')) return void ctx.deadLetter('bad_input');
      throw new Error(`tool broke on ${String(e.data)}`);
    });
    const started = Date.now();
    const err = await bus.request(`${prefix}.run`, 'x', { timeoutMs: 30_000 }).then(() => null, (x: unknown) => x);
    assert.ok(err instanceof RequestFailedError, `got ${String(err)}`);
    assert.ok(Date.now() - started < 15_000, 'told at once, not after timeoutMs');
    const f = err as RequestFailedError;
    assert.is(f.code, 'REQUEST_FAILED');
    assert.equal([f.group, f.reason, f.error], [group, 'failed', 'Error: tool broke on x']);
    assert.match(f.message, `dead-lettered by group ${group} (failed): Error: tool broke on x`);
    const refused = await bus.request(`${prefix}.refuse`, 1, { timeoutMs: 30_000 }).then(() => null, (x: unknown) => x);
    assert.ok(refused instanceof RequestFailedError && refused.reason === 'bad_input', `got ${String(refused)}`);
    assert.is(await bus.request(`${prefix}.ok`, 1, { timeoutMs: 30_000 }), 'fine');
    assert.equal(ended, ['failed', 'failed', 'replied']);
    assert.is((await bus.deadLetters.list({ group })).length, 2, 'the dead letters are stored as ever');
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

  /** Whether `topic` is listed (bus.stats(): what `agentbus stats` and the admin UI list). */
  const listed = async (bus: Bus, topic: string) => (await bus.stats()).some((t) => t.type === topic);

  test('a bus that made a request and closed leaves no reply topic (stream, group, listing)', async () => {
    const requester = await a.make();
    const observer = await a.another();
    const type = uniq('ask.close');
    let replyto = '';
    await observer.subscribe({ group: uniq('g'), types: [type] }, (e) => ((replyto = e.replyto!), 'ok'));
    assert.is(await requester.request(type, null, { timeoutMs: 10_000 }), 'ok');
    assert.match(replyto, /^agentbus\.reply\.[0-9a-f]{12}$/);
    await waitFor('the reply topic listed while its bus lives', () => listed(observer, replyto), 15_000, 100);
    await requester.close();
    // Another bus' listing may hold its last look at the store's streams a little longer (Redis: 10 s).
    await waitFor('the reply topic gone once its bus closed', async () => !(await listed(observer, replyto)), 15_000, 200);
    assert.equal(await observer.deadLetters.list({ group: replyto }), []);
  });

  test('a reply topic whose bus is gone (its group heard of by no heartbeat) is swept by another bus\' housekeeping; a live one and a keyed group\'s are kept', async () => {
    const sweeper = await a.make({ replyTopicIdleMs: 2000 });
    const live = await a.another();
    const type = uniq('ask.live');
    await sweeper.subscribe({ group: uniq('g'), types: [type] }, (e) => e.data);
    assert.is(await live.request(type, 1, { timeoutMs: 10_000 }), 1);
    // A reply topic as a bus that died left it: read by its group, which no consumer heartbeats any more.
    const orphan = `agentbus.reply.${randomBytes(6).toString('hex')}`;
    const inbox = await sweeper.subscribe({ group: orphan, types: [orphan] }, () => {});
    await sweeper.publish(orphan, { late: true });
    await inbox.close();
    assert.ok(await listed(sweeper, orphan));
    // A keyed group's reply topic (durable requests) as a group whose owner is down leaves it: never swept.
    const keyedReplies = keyedReplyTopic(uniq('g'));
    const keyedInbox = await sweeper.subscribe({ group: uniq('keyed'), types: [keyedReplies] }, () => {});
    await sweeper.publish(keyedReplies, { waiting: 'for its owner' });
    await keyedInbox.close();
    const started = Date.now();
    await waitFor('the orphaned reply topic swept', async () => (await sweeper.trim(), !(await listed(sweeper, orphan))), 20_000, 250);
    // Idle for 2 s, then found so again at least 3 s later (bus/replies.ts).
    assert.ok(Date.now() - started >= 2500, `swept after ${Date.now() - started} ms`);
    assert.ok(await listed(sweeper, keyedReplies), 'a keyed group\'s reply topic is kept');
    assert.is(await live.request(type, 2, { timeoutMs: 10_000 }), 2, 'the live bus\' reply topic was kept');
  });

  test('a request reached through a pattern is answered only by ctx.reply: an audit `*` handler (returning nothing, or what push returns) does not race the real reply', async () => {
    const bus = await a.make();
    const prefix = uniq('tool');
    const audited: string[] = [];
    // Fast: before, its null reply came first and won. Another returns what push returns (a number).
    await bus.subscribe({ group: uniq('audit'), types: [`${prefix}.*`] }, (e) => void audited.push(e.type));
    await bus.subscribe({ group: uniq('audit2'), types: [`${prefix}.*`] }, (e) => audited.push(e.type));
    await bus.subscribe({ group: uniq('tool'), types: [`${prefix}.run`] }, async (e) => {
      await sleep(200);
      return { ran: e.data };
    });
    // Exact type, nothing returned: answered with null, as ever (a void action is acknowledged).
    await bus.subscribe({ group: uniq('void'), types: [`${prefix}.void`] }, () => undefined);
    // A router over a pattern answers with ctx.reply; what it returns is no answer.
    await bus.subscribe({ group: uniq('router'), types: [`${prefix}.route.*`] }, (e, ctx) => {
      if (e.type.endsWith('.ctx')) return void ctx.reply('by ctx');
      return `routed ${e.type.slice(prefix.length + 1)}`;
    });
    assert.equal(await bus.request(`${prefix}.run`, 7, { timeoutMs: 10_000 }), { ran: 7 });
    assert.is(await bus.request(`${prefix}.void`, 0, { timeoutMs: 10_000 }), null);
    assert.is(await bus.request(`${prefix}.route.ctx`, 0, { timeoutMs: 10_000 }), 'by ctx');
    const unanswered = await bus.request(`${prefix}.route.a`, 0, { timeoutMs: 1500 }).then(() => null, (x: unknown) => x);
    assert.ok(unanswered instanceof RequestTimeoutError, `a value returned through a pattern is no answer: got ${String(unanswered)}`);
    await waitFor('the audit handlers saw every request', () => audited.length === 8, 10_000);
  });

  test('a pattern subscription never takes on a reply topic: it gets no reply, and a reply topic dropped on close stays gone', async () => {
    const observer = await a.make();
    const requester = await a.another();
    const type = uniq('ask.pattern');
    const seen: string[] = [];
    // Not `*`: a pattern matching the request's type would answer it too (every group that handles a request replies).
    await observer.subscribe({ group: uniq('all'), types: ['agentbus.*'] }, (e) => void seen.push(e.type));
    let replyto = '';
    await observer.subscribe({ group: uniq('g'), types: [type] }, (e) => ((replyto = e.replyto!), 'ok'));
    assert.is(await requester.request(type, 1, { timeoutMs: 10_000 }), 'ok');
    await sleep(500); // the pattern subscription has looked at the topics (every 100 ms) since the reply topic was made
    assert.is(await requester.request(type, 2, { timeoutMs: 10_000 }), 'ok');
    const other = `agentbus.${uniq('other')}`;
    await requester.publish(other, {});
    await waitFor('the pattern subscription takes on a new topic', () => seen.includes(other), 10_000);
    assert.equal(seen.filter((t) => t.startsWith('agentbus.reply.')), [], 'no reply reached the pattern subscription');
    await requester.close();
    await waitFor('the reply topic gone once its bus closed', async () => !(await listed(observer, replyto)), 15_000, 200);
    await sleep(2500); // a pattern consumer reading a dropped topic would make it again within a read (1 s)
    assert.not.ok(await listed(observer, replyto), 'the reply topic came back');
  });

  test('a topic first published elsewhere after a reply topic was dropped reaches a pattern subscription at once (the count of topics is back where it was)', async () => {
    const observer = await a.make();
    const requester = await a.another();
    const publisher = await a.another();
    const ask = uniq('ask.count');
    const family = uniq('fam');
    const got: string[] = [];
    await observer.subscribe({ group: uniq('g'), types: [ask] }, () => 'ok');
    await observer.subscribe({ group: uniq('p'), types: [`${family}.*`] }, (e) => void got.push(e.type));
    assert.is(await requester.request(ask, 1, { timeoutMs: 10_000 }), 'ok');
    await sleep(400); // the pattern subscription has looked at the topics with the reply topic among them
    await requester.close(); // one topic fewer...
    const first = `${family}.created`;
    await publisher.publish(first, {}); // ...and one more, first published by another bus
    const started = Date.now();
    await waitFor('the new topic\'s first event', () => got.includes(first), 5000, 50);
    assert.ok(Date.now() - started < 5000);
  });

  test('a reply arriving after its requester closed (and dropped its topic) is swept too: the replier lists the topic again', async () => {
    const replier = await a.make({ replyTopicIdleMs: 2000 });
    const requester = await a.another();
    const type = uniq('ask.late');
    let replyto = '';
    let second = false;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // The first request is answered at once (the replier now knows the reply topic), the second only once its requester closed.
    await replier.subscribe({ group: uniq('g'), types: [type], concurrency: 2 }, async (e) => {
      replyto = e.replyto!;
      if ((e.data as number) === 2) {
        second = true;
        await held;
      }
      return e.data;
    });
    assert.is(await requester.request(type, 1, { timeoutMs: 10_000 }), 1);
    void requester.request(type, 2, { timeoutMs: 60_000 }).catch(() => {});
    await waitFor('the second request taken', () => second, 10_000);
    await requester.close();
    await waitFor('the reply topic dropped on close', async () => !(await listed(replier, replyto)), 15_000, 200);
    release();
    await waitFor('the late reply stored: its topic listed again', () => listed(replier, replyto), 15_000, 200);
    await waitFor('the late reply\'s topic swept', async () => (await replier.trim(), !(await listed(replier, replyto))), 20_000, 250);
  });

  if (a.features.sharedAcrossProcesses) {
    test('a requesting process SIGKILLed: its reply topic is swept by another bus within replyTopicIdleMs + 3 s (+ a housekeeping run)', async () => {
      const sweeper = await a.make({ replyTopicIdleMs: 2000 });
      const type = uniq('ask.kill');
      let replyto = '';
      await sweeper.subscribe({ group: uniq('g'), types: [type] }, (e) => void (replyto = e.replyto!));
      const doomed = startChild({ bus: a.store.processOptions!, role: 'request', type });
      try {
        await waitFor('the child got its reply', () => doomed.lines.includes('replied'), 20_000);
        assert.ok(await listed(sweeper, replyto));
        doomed.proc.kill('SIGKILL');
        await doomed.exited;
        const killed = Date.now();
        await waitFor('the dead bus\' reply topic swept', async () => (await sweeper.trim(), !(await listed(sweeper, replyto))), 20_000, 250);
        assert.ok(Date.now() - killed < 15_000);
      } finally {
        if (doomed.proc.exitCode === null && doomed.proc.signalCode === null) doomed.proc.kill('SIGKILL');
      }
    });
  }

  test.run();
}
