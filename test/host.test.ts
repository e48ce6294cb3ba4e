// AgentHost in one process on a real SQLite file: routing by type and pattern, handler context,
// circuit breaker, crashes from escaping errors, readiness, metrics, HTTP, replay, validation.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentHost, BaseAgent, createBus, NonRetryableError, RequestFailedError, serveHttp, ValidationError, type AgentContext, type Bus, type CloudEvent, type HandlerContext } from '../index.js';
import { uniq, waitFor } from './helpers/index.js';
import { Crasher, Thrower } from './fixtures/agents/throws.js';

const dir = mkdtempSync(join(tmpdir(), 'agentbus-host-'));

/** A pino logger whose JSON lines land in `lines`, to assert on what the host logs. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

async function fresh(): Promise<{ bus: Bus; logger: pino.Logger; lines: Record<string, unknown>[] }> {
  const { logger, lines } = capture();
  const bus = await createBus({ adapter: 'sqlite', path: join(dir, `${uniq('h')}.db`), logger });
  return { bus, logger, lines };
}

const h = suite('host');

h('routes by exact type to per-type methods and by pattern to handle; ctx carries source, trace and a bound logger', async () => {
  const { bus, logger, lines } = await fresh();
  const seen: string[] = [];
  const published: CloudEvent[] = [];
  class Cache extends BaseAgent {
    static subscriptions = ['device.validated', 'device.*'];
    async onDeviceValidated(e: CloudEvent, ctx: HandlerContext) {
      seen.push(`method ${e.type}`);
      ctx.logger.info('cached');
      await ctx.publish('cache.updated', { id: e.id });
    }
    handle(e: CloudEvent) {
      seen.push(`handle ${e.type}`);
    }
  }
  class Listener extends BaseAgent {
    static subscriptions = ['cache.updated'];
    onCacheUpdated(e: CloudEvent) {
      published.push(e);
    }
  }
  const host = new AgentHost({ bus, agents: [Cache, Listener], logger, hostId: 'test-host' });
  await host.start();
  const trace = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const id = await bus.publish('device.validated', { d: 1 }, { traceparent: trace });
  await bus.publish('device.removed', { d: 1 });
  await waitFor('both routed and the follow-up handled', () => seen.length === 2 && published.length === 1);
  assert.equal(seen.sort(), ['handle device.removed', 'method device.validated']);
  assert.is(published[0].source, '/agentbus/test-host/Cache');
  assert.is(published[0].traceparent, trace);
  assert.equal(published[0].data, { id });
  const line = lines.find((l) => l.msg === 'cached')!;
  assert.equal([line.agent, line.group, line.id, line.type], ['Cache', 'Cache', id, 'device.validated']);
  await host.stop();
  await bus.close();
});

h('requests through a pattern: an agent\'s own on<Type> method answers with its return value (null for nothing) and its dead letter fails the request at once; handle answers only by ctx.reply, and its dead letter fails none; an audit agent on * never answers', async () => {
  const { bus, logger } = await fresh();
  let audited = 0;
  class Tools extends BaseAgent {
    static subscriptions = ['tool.*'];
    onToolRun(e: CloudEvent) {
      return { ran: e.data };
    }
    onToolVoid() {}
    onToolBroken() {
      throw new NonRetryableError('tool broken');
    }
    handle(e: CloudEvent, ctx: HandlerContext) {
      if (e.type === 'tool.explicit') ctx.reply('by ctx');
      if (e.type === 'tool.refused') ctx.deadLetter('refused by handle');
      return 'not an answer';
    }
  }
  class Audit extends BaseAgent {
    static subscriptions = ['*'];
    handle() {
      return ++audited; // returns a value: still no answer
    }
  }
  const host = new AgentHost({ bus, agents: [Tools, Audit], logger });
  await host.start();
  try {
    assert.equal(await bus.request('tool.run', 7, { timeoutMs: 10_000 }), { ran: 7 });
    assert.is(await bus.request('tool.void', 0, { timeoutMs: 10_000 }), null);
    assert.is(await bus.request('tool.explicit', 0, { timeoutMs: 10_000 }), 'by ctx');
    const err = await bus.request('tool.other', 0, { timeoutMs: 1500 }).then(() => null, (x: unknown) => x);
    assert.is((err as { code?: string } | null)?.code, 'REQUEST_TIMEOUT', 'handle returning a value through a pattern is no answer');
    // The method that would have answered fails the requester at once when its request is dead-lettered.
    const started = Date.now();
    const failed = await bus.request('tool.broken', 0, { timeoutMs: 20_000 }).then(() => null, (x: unknown) => x);
    assert.ok(failed instanceof RequestFailedError, `on<Type> through a pattern, dead-lettered: got ${String(failed)}`);
    assert.equal([failed.code, failed.group, failed.reason], ['REQUEST_FAILED', 'Tools', 'non_retryable']);
    assert.ok(Date.now() - started < 10_000, 'at once, not at timeoutMs');
    // handle answers by ctx.reply only: its dead letter tells the requester nothing either.
    const refused = await bus.request('tool.refused', 0, { timeoutMs: 1500 }).then(() => null, (x: unknown) => x);
    assert.is((refused as { code?: string } | null)?.code, 'REQUEST_TIMEOUT', 'a dead letter of handle through a pattern sends no failure reply');
    await waitFor('the audit agent saw the six requests', () => audited >= 6, 10_000);
  } finally {
    await host.stop();
    await bus.close();
  }
});

h('a circuit breaker opens after breakerFailures failures in a row: a crash, then a restart', async () => {
  const { bus, logger, lines } = await fresh();
  let calls = 0;
  class Flaky extends BaseAgent {
    static subscriptions = ['job.run'];
    static options = { breakerFailures: 3, maxAttempts: 1 };
    onJobRun() {
      calls++;
      throw new Error('downstream down');
    }
  }
  const host = new AgentHost({ bus, agents: [Flaky], logger, supervisor: { backoff: { initialMs: 10 } } });
  const states: string[] = [];
  host.on('transition', (t) => states.push(`${t.to}${t.error ? ` ${t.error}` : ''}`));
  await host.start();
  await bus.publishBatch([1, 2, 3].map((n) => ({ type: 'job.run', data: { n } })));
  await waitFor('restarted after the breaker opened', () => states.filter((s) => s === 'running').length === 2);
  assert.is(calls, 3);
  assert.ok(states.some((s) => s.startsWith('crashing CircuitOpenError: agent Flaky: 3 deliveries failed in a row')), states.join('\n'));
  assert.is(host.status().agents[0].restarts, 1);
  // maxAttempts 1: each failure is final, and its one line is the dead letter's, with the stack.
  const warnings = lines.filter((l) => l.level === 40);
  assert.equal(warnings.map((l) => l.msg), ['dead letter', 'dead letter', 'dead letter'], JSON.stringify(warnings));
  const failure = warnings[0];
  assert.equal([failure.group, failure.type, failure.attempts, failure.reason, failure.error], ['Flaky', 'job.run', 1, 'failed', 'Error: downstream down']);
  assert.ok(String(failure.stack).startsWith('Error: downstream down\n    at Flaky.onJobRun'), String(failure.stack));
  assert.match(String(failure.id), /^[0-9a-f-]{36}$/);
  await host.stop();
  await bus.close();
});

h('an error escaping an agent timer or promise crashes that agent, never the process', async () => {
  const { bus, logger } = await fresh();
  let starts = 0;
  class Leaky extends BaseAgent {
    onStart() {
      starts++;
      // Plain global timer and a floating promise: not through ctx, so only the host's
      // uncaught-error attribution can tell whose they are.
      if (starts === 1) setTimeout(() => { throw new Error('from a plain timer'); }, 5);
      if (starts === 2) void Promise.reject(new Error('from a floating promise'));
    }
  }
  class Bystander extends BaseAgent {}
  const host = new AgentHost({ bus, agents: [Leaky, Bystander], logger, supervisor: { backoff: { initialMs: 5 } } });
  const errors: string[] = [];
  host.on('transition', (t) => t.to === 'crashing' && errors.push(`${t.agent}: ${t.error}`));
  await host.start();
  await waitFor('two crashes and a third start', () => starts === 3 && host.status().agents[0].state === 'running');
  assert.equal(errors, ['Leaky: Error: from a plain timer', 'Leaky: Error: from a floating promise']);
  assert.is(host.status().agents[1].state, 'running');
  assert.is(host.status().agents[1].restarts, 0);
  await host.stop();
  await bus.close();
});

h('ctx.setInterval errors crash the agent; its timers stop with the instance', async () => {
  const { bus, logger } = await fresh();
  let ticks = 0;
  class Ticker extends BaseAgent {
    onStart(ctx: AgentContext) {
      ctx.setInterval(async () => {
        ticks++;
        if (ticks === 3) throw new Error('third tick');
      }, 5);
    }
  }
  const host = new AgentHost({ bus, agents: [{ agent: Ticker, restart: 'temporary' }], logger });
  await host.start();
  await waitFor('temporary agent stopped after its crash', () => host.status().agents[0].state === 'stopped');
  const after = ticks;
  await new Promise((r) => setTimeout(r, 50));
  assert.is(ticks, after, 'the interval was cleared');
  assert.is(host.status().agents[0].lastError, 'Error: third tick');
  await host.stop();
  await bus.close();
});

h('past its intensity an agent is failed, the host is not ready, the others keep handling', async () => {
  const { bus, logger } = await fresh();
  const handled: number[] = [];
  class Broken extends BaseAgent {
    onStart() {
      throw new Error('no database');
    }
  }
  class Worker extends BaseAgent {
    static subscriptions = ['work.done'];
    onWorkDone(e: CloudEvent<{ n: number }>) {
      handled.push(e.data.n);
    }
  }
  const host = new AgentHost({ bus, agents: [Worker, Broken], logger, supervisor: { maxRestarts: 2, backoff: { initialMs: 5 } } });
  const failed: string[] = [];
  host.on('failed', (a) => failed.push(a));
  await host.start();
  await waitFor('Broken failed', () => failed.length === 1);
  assert.equal(failed, ['Broken']);
  const http = await serveHttp(host, 0);
  const ready = await fetch(`${http.url}/readyz`);
  assert.is(ready.status, 503);
  assert.match(await ready.text(), /Broken failed/);
  assert.is((await fetch(`${http.url}/healthz`)).status, 200);
  await bus.publish('work.done', { n: 7 });
  await waitFor('Worker still handles', () => handled.length === 1);
  const status = (await (await fetch(`${http.url}/status`)).json()) as { ready: boolean; agents: { agent: string; state: string; restarts: number }[] };
  assert.is(status.ready, false);
  assert.equal(status.agents.map((a) => [a.agent, a.state, a.restarts]), [['Worker', 'running', 0], ['Broken', 'failed', 2]]);
  http.server.close();
  await host.stop();
  await bus.close();
});

h('/readyz is 200 when every agent runs; /metrics counts outcomes, restarts, state, store lag and due delayed events', async () => {
  const { bus, logger } = await fresh();
  const type = uniq('order.placed');
  class Orders extends BaseAgent {
    static subscriptions = [type];
    static options = { maxAttempts: 2, backoff: { initialMs: 1 } };
    async handle(e: CloudEvent<{ n: number }>, ctx: HandlerContext) {
      if (e.data.n === 3) throw new Error('bad order');
      await ctx.publish('order.audited', { n: e.data.n });
      await ctx.publish('bad type!', {}).catch(() => {});
    }
  }
  const host = new AgentHost({ bus, agents: [Orders], logger });
  await host.start();
  const http = await serveHttp(host, 0);
  assert.is((await fetch(`${http.url}/readyz`)).status, 200);
  await bus.publishBatch([1, 2, 3].map((n) => ({ type, data: { n } })));
  await waitFor('a dead letter', async () => (await bus.deadLetters.list({ group: 'Orders' })).length === 1);
  await bus.publish(type, { n: 4 }, { delay: 600_000 }); // due in 10 minutes: counted as due
  const res = await fetch(`${http.url}/metrics`);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  const metric = (name: string) => text.split('\n').find((l) => l.startsWith(name))?.split(' ').pop();
  assert.is(metric(`agentbus_events_handled_total{type="${type}",group="Orders"}`), '2');
  assert.is(metric('agentbus_events_published_total{type="order.audited"}'), '2', 'counted once stored; the refused publish is not counted');
  assert.is(metric(`agentbus_events_failed_total{type="${type}",group="Orders"}`), '2');
  assert.is(metric(`agentbus_events_retried_total{type="${type}",group="Orders"}`), '1');
  assert.is(metric(`agentbus_events_dead_lettered_total{type="${type}",group="Orders",reason="failed"}`), '1');
  assert.is(metric(`agentbus_handler_duration_seconds_count{type="${type}",group="Orders"}`), '4');
  assert.is(metric(`agentbus_agent_state{agent="Orders",state="running"}`), '1');
  assert.is(metric(`agentbus_group_pending{type="${type}",group="Orders"}`), '0');
  assert.is(metric(`agentbus_group_dead_letters{type="${type}",group="Orders"}`), '1');
  assert.is(metric(`agentbus_due_events{type="${type}"}`), '1');
  assert.ok(text.includes('agentbus_process_resident_memory_bytes'), 'default process metrics');
  http.server.close();
  await host.stop();
  await bus.close();
});

h('replicas: one consumer per replica in the group, named <hostId>/<agent>/<n>, sharing the work', async () => {
  const { bus, logger } = await fresh();
  const type = uniq('task.created');
  const consumers = new Set<string>();
  let n = 0;
  class Pool extends BaseAgent {
    static subscriptions = [type];
    static options = { replicas: 3 };
    async handle(_e: CloudEvent, ctx: HandlerContext) {
      consumers.add(ctx.consumer);
      n++;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const host = new AgentHost({ bus, agents: [Pool], logger, hostId: 'h1' });
  await host.start();
  await bus.publishBatch(Array.from({ length: 30 }, (_, i) => ({ type, data: { i } })));
  await waitFor('all handled', () => n === 30);
  assert.equal([...consumers].sort(), ['h1/Pool/1', 'h1/Pool/2', 'h1/Pool/3']);
  await host.stop();
  await bus.close();
});

h('replay hands stored events to a fresh instance of an agent without moving its group', async () => {
  const { bus, logger } = await fresh();
  const type = uniq('audit.entry');
  const got: number[] = [];
  let lifecycle = '';
  class Auditor extends BaseAgent {
    static subscriptions = [type];
    onStart() {
      lifecycle += 'start ';
    }
    onStop() {
      lifecycle += 'stop';
    }
    handle(e: CloudEvent<{ n: number }>) {
      got.push(e.data.n);
    }
  }
  await bus.publishBatch([1, 2, 3].map((n) => ({ type, data: { n } })));
  const host = new AgentHost({ bus, agents: [Auditor], logger });
  const result = await host.replay('Auditor', { from: 0 });
  assert.equal(result, { handled: 3, failed: [], published: { count: 0, stored: false, events: [] } });
  assert.equal(got, [1, 2, 3]);
  assert.is(lifecycle, 'start stop');
  assert.equal((await bus.stats()).find((t) => t.type === type)!.groups, [], 'no group was created or moved');
  assert.throws(() => host.replay('Nobody'), /no agent "Nobody" in this host \(agents: Auditor\)/);
  await bus.close();
});

h('onStop throwing is logged and kept as lastError; the agent is stopped all the same', async () => {
  const { bus, logger, lines } = await fresh();
  class Sloppy extends BaseAgent {
    onStop() {
      throw new Error('could not flush');
    }
  }
  const host = new AgentHost({ bus, agents: [Sloppy], logger });
  await host.start();
  await host.stop();
  assert.equal(host.status().agents.map((a) => [a.state, a.lastError]), [['stopped', 'Error: could not flush']]);
  assert.ok(lines.some((l) => l.msg === 'agent Sloppy: stopping -> stopped' && l.error === 'Error: could not flush'));
  await bus.close();
});

h('bad agents are refused at construction, naming the agent and what is missing', async () => {
  const { bus, logger } = await fresh();
  class NoHandler extends BaseAgent {
    static subscriptions = ['device.validated'];
  }
  class PatternNoHandle extends BaseAgent {
    static subscriptions = ['device.*'];
    onDeviceValidated() {}
  }
  class BadOption extends BaseAgent {
    static subscriptions = ['a.b'];
    static options = { concurrency: 0 };
    handle() {}
  }
  class Typo extends BaseAgent {
    static options = { concurency: 2 } as never;
  }
  class Twin extends BaseAgent {}
  const make = (agents: unknown[]) => () => new AgentHost({ bus, agents: agents as never, logger });
  assert.throws(make([NoHandler]), /agent NoHandler subscribes to device.validated but has neither a onDeviceValidated\(event, ctx\) method nor handle/);
  assert.throws(make([PatternNoHandle]), /agent PatternNoHandle subscribes to the pattern device\.\* but has no handle/);
  assert.throws(make([BadOption]), /invalid concurrency 0: expected an integer from 1 to 10000/);
  assert.throws(make([Typo]), /unknown agent Typo option "concurency": did you mean concurrency\? \(expected one of /);
  assert.throws(make([class NotAnAgent {}]), /invalid agent function NotAnAgent: expected a class extending BaseAgent/);
  const duplicate = (name: string) => (e: Error) => e instanceof ValidationError && e.code === 'INVALID_OPTION' && e.message.includes(`two agents are named "${name}"`);
  assert.throws(make([Twin, { agent: Twin }]), duplicate('Twin'));
  assert.throws(make([{ agent: Twin, name: 'Twin' }, Twin]), duplicate('Twin'));
  class Other extends BaseAgent {}
  assert.throws(make([Other, { agent: Twin, name: 'Other' }]), duplicate('Other'));
  assert.throws(make([{ agent: Twin, restart: 'sometimes' }]), /restart "sometimes": expected one of permanent, transient, temporary/);
  await bus.close();
});

h('types named like lifecycle hooks (start, stop) reach handle through a pattern, never onStart/onStop', async () => {
  const { bus, logger } = await fresh();
  const calls: string[] = [];
  class Lifecycle extends BaseAgent {
    static subscriptions = ['st*'];
    onStart() {
      calls.push('onStart');
    }
    onStop() {
      calls.push('onStop');
    }
    handle(e: CloudEvent) {
      calls.push(`handle ${e.type}`);
    }
  }
  const host = new AgentHost({ bus, agents: [Lifecycle], logger });
  await host.start();
  await bus.publish('start', { forged: true });
  await bus.publish('stop', { forged: true });
  await waitFor('both handled', () => calls.filter((c) => c.startsWith('handle')).length === 2);
  assert.equal(calls.sort(), ['handle start', 'handle stop', 'onStart']);
  await host.stop();
  assert.is(calls.filter((c) => c === 'onStop').length, 1, 'onStop ran once, at stop');
  await bus.close();
});

h('an agent subscribing to an exact type whose method name is reserved is refused, naming type, method and the way out', async () => {
  const { bus, logger } = await fresh();
  class Starter extends BaseAgent {
    static subscriptions = ['start'];
    onStart() {}
    handle() {}
  }
  class Crashy extends BaseAgent {
    static subscriptions = ['crash'];
    onCrash() {}
  }
  assert.throws(() => new AgentHost({ bus, agents: [Starter], logger }), /agent Starter subscribes to the type start, whose method name onStart is reserved .*rename the type, or subscribe through a pattern \(such as start\*\) and handle it in handle/);
  assert.throws(() => new AgentHost({ bus, agents: [Crashy], logger }), /type crash, whose method name onCrash is reserved/);
  await bus.close();
});

h('a pattern-routed type whose method name is reserved, when the agent has no handle, is a dead letter no_handler', async () => {
  const { bus, logger } = await fresh();
  const calls: string[] = [];
  class NoHandle extends BaseAgent {
    static subscriptions = ['st*'];
    onStart() {
      calls.push('onStart');
    }
  }
  // The host refuses a pattern without handle: give it one for the check only.
  const proto = NoHandle.prototype as unknown as Record<string, unknown>;
  proto.handle = () => {};
  const host = new AgentHost({ bus, agents: [NoHandle], logger });
  delete proto.handle;
  await host.start();
  await bus.publish('start', {});
  await waitFor('the dead letter', async () => (await bus.deadLetters.list({ group: 'NoHandle' })).length === 1);
  assert.is((await bus.deadLetters.list({ group: 'NoHandle' }))[0].reason, 'no_handler');
  assert.equal(calls, ['onStart']);
  await host.stop();
  await bus.close();
});

h('the handler cache is keyed by topic and bounded: 1,100 topics through a pattern leave at most 1,024 entries', async () => {
  const { bus, logger } = await fresh();
  let handled = 0;
  class Many extends BaseAgent {
    static subscriptions = ['many.*'];
    static options = { concurrency: 64 };
    handle() {
      handled++;
    }
  }
  const host = new AgentHost({ bus, agents: [Many], logger });
  await host.start();
  await bus.publishBatch(Array.from({ length: 1100 }, (_, i) => ({ type: `many.t${i}`, data: i })));
  await waitFor('1100 handled', () => handled === 1100, 30_000);
  const inst = (host as unknown as { current: Map<string, { cachedHandlers: number }> }).current.get('Many')!;
  assert.ok(inst.cachedHandlers <= 1024, `${inst.cachedHandlers} cached handlers`);
  assert.ok(inst.cachedHandlers > 0);
  await host.stop();
  await bus.close();
});

h('a handler throwing Object.create(null) is retried and dead-lettered with a readable error; the host goes on', async () => {
  const { bus, logger, lines } = await fresh();
  let calls = 0;
  class Odd extends BaseAgent {
    static subscriptions = ['odd.thing'];
    static options = { maxAttempts: 2, backoff: { initialMs: 1, maxMs: 5 } };
    onOddThing() {
      calls++;
      throw Object.assign(Object.create(null), { why: 'no prototype' });
    }
  }
  const host = new AgentHost({ bus, agents: [Odd], logger });
  await host.start();
  await bus.publish('odd.thing', {});
  await waitFor('the dead letter', async () => (await bus.deadLetters.list({ group: 'Odd' })).length === 1);
  const [dl] = await bus.deadLetters.list({ group: 'Odd' });
  assert.is(calls, 2);
  assert.is(dl.reason, 'failed');
  assert.is(dl.error, '{"why":"no prototype"}');
  // One warning per failure: the first gets a retry, the second is the dead letter.
  const warnings = lines.filter((l) => l.level === 40);
  assert.equal(warnings.map((l) => l.msg), ['delivery failed, will retry', 'dead letter'], JSON.stringify(warnings));
  const [retry, dead] = warnings;
  assert.equal([retry.agent, retry.group, retry.id, retry.type, retry.attempt], ['Odd', 'Odd', dl.event!.id, 'odd.thing', 1]);
  assert.is(JSON.stringify(retry.err), '{"type":"object","message":"{\\"why\\":\\"no prototype\\"}","stack":""}');
  assert.equal([dead.group, dead.id, dead.type, dead.attempts, dead.reason, dead.error], ['Odd', dl.event!.id, 'odd.thing', 2, 'failed', '{"why":"no prototype"}']);
  assert.is(dl.stack, undefined, 'a thrown value that is not an Error has no stack');
  assert.is(host.status().agents[0].state, 'running');
  await host.stop();
  await bus.close();
});

h('a failing handler\'s warn line, its dead letter and a crash in status() carry the stack naming the file and line that threw', async () => {
  const { bus, logger, lines } = await fresh();
  // The lines that throw in test/fixtures/agents/throws.ts.
  const THROW_AT = 'test/fixtures/agents/throws.ts:9:';
  const CRASH_AT = 'test/fixtures/agents/throws.ts:15:';
  const host = new AgentHost({ bus, agents: [Thrower, { agent: Crasher, restart: 'temporary' }], logger });
  await host.start();
  await bus.publish('stack.trace', {});
  await waitFor('the dead letter', async () => (await bus.deadLetters.list({ group: 'Thrower' })).length === 1);
  // maxAttempts 1: the failure is final, so its one warn line is the dead letter's (asserted below).
  assert.not.ok(lines.some((l) => l.msg === 'delivery failed, will retry'), 'a final failure is logged once, as the dead letter');
  const [dl] = await bus.deadLetters.list({ group: 'Thrower' });
  assert.is(dl.error, 'Error: thrown at a known line');
  assert.ok(dl.stack!.startsWith('Error: thrown at a known line\n') && dl.stack!.includes(THROW_AT), dl.stack);
  await waitFor('the dead letter line', () => lines.some((l) => l.msg === 'dead letter' && String(l.stack).includes(THROW_AT)));
  const crashed = host.status().agents.find((a) => a.agent === 'Crasher')!;
  assert.is(crashed.lastError, 'Error: cannot start');
  assert.ok(crashed.lastErrorStack!.includes(CRASH_AT), String(crashed.lastErrorStack));
  const crashing = crashed.history.find((t) => t.to === 'crashing')!;
  assert.ok(crashing.error === 'Error: cannot start' && crashing.stack!.includes(CRASH_AT), JSON.stringify(crashing));
  assert.ok(lines.some((l) => l.msg === 'agent Crasher: starting -> crashing' && String(l.stack).includes(CRASH_AT)), 'the crash line logs the stack');
  assert.is(host.status().agents.find((a) => a.agent === 'Thrower')!.lastErrorStack, null);
  await host.stop();
  await bus.close();
});

h('a thrown value pino cannot read (a revoked Proxy) logs as { type, message }, is dead-lettered without a stack; the host goes on', async () => {
  const { bus, logger, lines } = await fresh();
  class Revoked extends BaseAgent {
    static subscriptions = ['revoked.proxy'];
    static options = { maxAttempts: 2, backoff: { initialMs: 1, maxMs: 5 } };
    onRevokedProxy() {
      const p = Proxy.revocable({}, {});
      p.revoke();
      throw p.proxy;
    }
  }
  const host = new AgentHost({ bus, agents: [Revoked], logger });
  await host.start();
  await bus.publish('revoked.proxy', {});
  await waitFor('the dead letter', async () => (await bus.deadLetters.list({ group: 'Revoked' })).length === 1);
  const [dl] = await bus.deadLetters.list({ group: 'Revoked' });
  assert.is(dl.error, 'a thrown object (not convertible to a string)');
  assert.is(dl.stack, undefined);
  const warn = lines.find((l) => l.msg === 'delivery failed, will retry');
  assert.equal(warn?.err, { type: 'object', message: 'a thrown object (not convertible to a string)', stack: '' });
  assert.is(host.status().agents[0].state, 'running');
  await host.stop();
  await bus.close();
});

h('replay captures what the agent publishes (ctx.publish, publishBatch, ctx.bus.publish) and stores it only with publish: true; ctx.replaying tells the runs apart', async () => {
  const { bus, logger } = await fresh();
  const input = uniq('replay.in');
  const output = uniq('replay.out');
  const replaying: boolean[] = [];
  class Echo extends BaseAgent {
    static subscriptions = [input];
    onStart(ctx: AgentContext) {
      replaying.push(ctx.replaying);
    }
    async handle(e: CloudEvent<{ n: number }>, ctx: HandlerContext) {
      replaying.push(ctx.replaying);
      await ctx.publish(output, { n: e.data.n, via: 'publish' }, { subject: `s${e.data.n}` });
      await ctx.publishBatch([{ type: output, data: { n: e.data.n, via: 'batch' } }]);
      await ctx.bus.publish(output, { n: e.data.n, via: 'bus' });
      await ctx.publish(output, { n: e.data.n, via: 'bad delay' }, { delay: -1 }).catch((err: ValidationError) => void refused.push(err.code));
    }
  }
  const refused: string[] = [];
  const host = new AgentHost({ bus, agents: [Echo], logger });
  await host.start();
  const length = async () => (await bus.stats()).find((t) => t.type === output)?.length ?? 0;
  await bus.publishBatch([1, 2].map((n) => ({ type: input, data: { n } })));
  await waitFor('the live run published 6', async () => (await length()) === 6);
  assert.equal(replaying, [false, false, false], 'onStart and two handlers, live');

  replaying.length = 0;
  const r = await host.replay('Echo', { from: 0 });
  assert.equal([r.handled, r.failed, r.published.count, r.published.stored], [2, [], 6, false]);
  assert.equal(replaying, [true, true, true], 'onStart and two handlers, replaying');
  const first = r.published.events[0];
  assert.equal({ ...first, id: '' }, { type: output, id: '', subject: 's1', data: { n: 1, via: 'publish' } });
  assert.match(first.id, /^[0-9a-f-]{36}$/);
  assert.equal(r.published.events.map((e) => (e.data as { via: string }).via), ['publish', 'batch', 'bus', 'publish', 'batch', 'bus']);
  assert.is(await length(), 6, 'a replay stores nothing by default');
  assert.equal(refused, Array(4).fill('INVALID_OPTION'), 'a bad delay is refused live and captured alike');

  const sent = await host.replay('Echo', { from: 0, publish: true });
  assert.equal([sent.handled, sent.published.count, sent.published.stored], [2, 6, true]);
  await waitFor('publish: true stored them', async () => (await length()) === 12);
  assert.throws(() => host.replay('Echo', { publish: 'yes' as never }), (e: Error) => e instanceof ValidationError && /invalid replay publish "yes"/.test(e.message));
  await host.stop();
  await bus.close();
});

h('hostId: up to 512 characters every consumer name fits and the agents run; longer is refused at construction, naming its length and the limit', async () => {
  const { bus, logger } = await fresh();
  // The longest agent name (200 characters, also the group) with the largest replica number.
  const name = `A${'b'.repeat(199)}`;
  class Longest extends BaseAgent {
    static subscriptions = ['host.id'];
    static options = { replicas: 1000 };
    handle() {}
  }
  const agents = [{ agent: Longest, name }];
  const host = new AgentHost({ bus, agents, logger, hostId: `h${'x'.repeat(511)}`, catchUncaught: false });
  await host.start();
  await waitFor('agent running with 1000 consumers', () => host.status().ready);
  await host.stop();
  for (const hostId of ['y'.repeat(513), 'z'.repeat(995)]) {
    assert.throws(() => new AgentHost({ bus, agents, logger, hostId }), new RegExp(`invalid hostId \\(hostId, AGENTBUS_HOST_ID\\) of ${hostId.length} characters: at most 512`));
  }
  const before = process.env.AGENTBUS_HOST_ID;
  process.env.AGENTBUS_HOST_ID = 'e'.repeat(600);
  try {
    assert.throws(() => new AgentHost({ bus, agents, logger }), /of 600 characters: at most 512/);
    process.env.AGENTBUS_HOST_ID = '';
    assert.ok(new AgentHost({ bus, agents, logger }).hostId.endsWith(`-${process.pid}`), 'empty AGENTBUS_HOST_ID is unset');
  } finally {
    if (before === undefined) delete process.env.AGENTBUS_HOST_ID;
    else process.env.AGENTBUS_HOST_ID = before;
  }
  assert.throws(() => new AgentHost({ bus, agents, logger, hostId: '' }), /invalid hostId "" \(hostId, AGENTBUS_HOST_ID\): expected a non-empty string/);
  await bus.close();
});

h.run();
