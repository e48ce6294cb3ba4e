// Keyed agents under AgentHost on a real SQLite file: ctx.key / ctx.state, an XState machine per
// key whose snapshot outlives the host, replay on scratch state (host.replay and the CLI), publishes
// of a redelivered handler stored once, ctx.waitFor with static waitsFor, ctx.step, a durable
// ctx.request, and the checks that refuse a misdeclared keyed agent.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assign, emit, setup } from 'xstate';
import { AgentHost, BaseAgent, createBus, ValidationError, type Bus, type CloudEvent, type KeyedContext } from '../index.js';
import { KeyedCounter } from './fixtures/agents/keyed.js';
import { uniq, waitFor } from './helpers/index.js';

const logger = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'agentbus-keyed-'));
const fresh = (path = join(dir, `${uniq('k')}.db`)) => createBus({ adapter: 'sqlite', path, logger });

/** Every event stored under `type`, oldest first. */
async function stored(bus: Bus, type: string): Promise<CloudEvent[]> {
  const out: CloudEvent[] = [];
  await bus.replay({ types: [type], from: 0 }, (e) => void out.push(e));
  return out;
}

const stateOf = async (bus: Bus, agent: string, key: string) => (await bus.keys!.get(agent, key))?.state;

test('a keyed agent (static key subject): ctx.key is the subject, ctx.state counts per key in publish order; no subject is a no_key dead letter', async () => {
  const bus = await fresh();
  const type = uniq('tally.add');
  const keys: string[] = [];
  class Tally extends BaseAgent {
    static subscriptions = [type];
    static key = 'subject' as const;
    static initialState = (key: string) => ({ key, n: 0, seen: [] as number[] });
    static options = { concurrency: 4 };
    handle(e: CloudEvent<{ i: number }>, ctx: KeyedContext<{ key: string; n: number; seen: number[] }>) {
      keys.push(ctx.key);
      ctx.state.n++;
      ctx.state.seen.push(e.data.i);
    }
  }
  const host = new AgentHost({ bus, agents: [Tally], logger });
  await host.start();
  const events = ['x', 'y', 'z'].flatMap((subject) => [0, 1, 2, 3, 4].map((i) => ({ type, data: { i }, subject })));
  await bus.publishBatch([...events.filter((_, j) => j % 2 === 0), ...events.filter((_, j) => j % 2 === 1)].sort((a, b) => a.data.i - b.data.i));
  await bus.publish(type, { i: 9 });
  await waitFor('every key counted', async () => (await Promise.all(['x', 'y', 'z'].map((k) => stateOf(bus, 'Tally', k)))).every((s) => (s as { n: number } | undefined)?.n === 5));
  for (const k of ['x', 'y', 'z']) assert.equal(await stateOf(bus, 'Tally', k), { key: k, n: 5, seen: [0, 1, 2, 3, 4] });
  await waitFor('the event without a subject dead-lettered', async () => (await bus.deadLetters.list({ group: 'Tally' })).length === 1);
  assert.is((await bus.deadLetters.list({ group: 'Tally' }))[0].reason, 'no_key');
  assert.equal([...new Set(keys)].sort(), ['x', 'y', 'z']);
  await host.stop();
  await bus.close();
});

test('static machine: each key runs its own XState actor; what it emits is published; its snapshot persists across a host restart', async () => {
  const path = join(dir, `${uniq('m')}.db`);
  const opened: Array<{ subject?: string; data: unknown; id: string }> = [];
  const door = setup({
    types: {} as { context: { opens: number }; events: { type: 'door.open' | 'door.close'; data: unknown }; emitted: { type: 'door.opened'; data: { opens: number } } },
  }).createMachine({
    id: 'door',
    initial: 'closed',
    context: { opens: 0 },
    states: {
      closed: { on: { 'door.open': { target: 'open', actions: [assign({ opens: ({ context }) => context.opens + 1 }), emit(({ context }) => ({ type: 'door.opened' as const, data: { opens: context.opens } }))] } } },
      open: { on: { 'door.close': 'closed' } },
    },
  });
  class Door extends BaseAgent {
    static subscriptions = ['door.open', 'door.close'];
    static key = 'subject' as const;
    static machine = door;
  }
  class Watch extends BaseAgent {
    static subscriptions = ['door.opened'];
    onDoorOpened(e: CloudEvent) {
      opened.push({ data: e.data, id: e.id });
    }
  }
  let bus = await fresh(path);
  let host = new AgentHost({ bus, agents: [Door, Watch], logger });
  await host.start();
  await bus.publish('door.open', {}, { subject: 'front' });
  await bus.publish('door.open', {}, { subject: 'back' });
  await waitFor('two doors opened', () => opened.length === 2);
  assert.equal(opened.map((o) => o.data).sort(), [{ opens: 1 }, { opens: 1 }]);
  const front = (await stateOf(bus, 'Door', 'front')) as { value: string; context: { opens: number } };
  assert.equal([front.value, front.context], ['open', { opens: 1 }], 'the persisted snapshot is the state');
  await host.stop();
  await bus.close();
  // A new host (and bus) on the same file: the actors resume from their snapshots.
  bus = await fresh(path);
  host = new AgentHost({ bus, agents: [Door, Watch], logger });
  await host.start();
  // (A key's events keep their order within a topic, not across topics: each step waits for the last.)
  await bus.publish('door.close', {}, { subject: 'front' });
  await waitFor('front stored closed', async () => ((await stateOf(bus, 'Door', 'front')) as { value: string }).value === 'closed');
  await bus.publish('door.open', {}, { subject: 'front' });
  await waitFor('front opened again', () => opened.length === 3);
  assert.equal(opened[2].data, { opens: 2 }, 'counted on from the snapshot stored before the restart');
  await waitFor('front stored open', async () => ((await stateOf(bus, 'Door', 'front')) as { context: { opens: number } }).context.opens === 2);
  assert.is(((await stateOf(bus, 'Door', 'front')) as { value: string }).value, 'open');
  assert.equal(((await stateOf(bus, 'Door', 'back')) as { context: unknown }).context, { opens: 1 });
  await host.stop();
  await bus.close();
});

test('replay of a keyed agent runs on scratch state from initialState and leaves the live state untouched (host.replay)', async () => {
  const bus = await fresh();
  const host = new AgentHost({ bus, agents: [KeyedCounter], logger });
  await host.start();
  await bus.publishBatch([1, 2, 3].map(() => ({ type: 'kfix.count', data: {}, subject: 'r1' })));
  await waitFor('live count 3', async () => ((await stateOf(bus, 'KeyedCounter', 'r1')) as { n: number } | undefined)?.n === 3);
  await waitFor('three counts published', async () => (await stored(bus, 'kfix.counted')).length === 3);
  const before = await bus.keys!.get('KeyedCounter', 'r1');
  const result = await host.replay('KeyedCounter');
  assert.is(result.handled, 3);
  assert.equal(result.published.events.map((e) => e.data), [1, 2, 3].map((n) => ({ key: 'r1', n })), 'counted from initialState, not from the live 3');
  assert.equal(await bus.keys!.get('KeyedCounter', 'r1'), before, 'live state, version and time untouched');
  assert.is((await stored(bus, 'kfix.counted')).length, 3, 'nothing stored by the replay');
  // The live agent goes on from its own state.
  await bus.publish('kfix.count', {}, { subject: 'r1' });
  await waitFor('live count 4', async () => ((await stateOf(bus, 'KeyedCounter', 'r1')) as { n: number }).n === 4);
  await host.stop();
  await bus.close();
});

test('agentbus replay --agent of a keyed agent prints counts from scratch state and leaves the live state untouched', async () => {
  const path = join(dir, `${uniq('cli')}.db`);
  const bus = await fresh(path);
  const host = new AgentHost({ bus, agents: [KeyedCounter], logger });
  await host.start();
  await bus.publishBatch([1, 2].map(() => ({ type: 'kfix.count', data: {}, subject: 'c1' })));
  await waitFor('live count 2', async () => ((await stateOf(bus, 'KeyedCounter', 'c1')) as { n: number } | undefined)?.n === 2);
  await host.stop();
  const before = await bus.keys!.get('KeyedCounter', 'c1');
  const r = spawnSync(process.execPath, ['dist/runtime/cli.js', 'replay', '--agent', 'KeyedCounter', '--agents', 'test/fixtures/agents/keyed.ts', '--json'], {
    encoding: 'utf8',
    env: { ...process.env, AGENTBUS_SQLITE_PATH: path },
  });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.published.events.map((e: { data: unknown }) => e.data), [{ key: 'c1', n: 1 }, { key: 'c1', n: 2 }]);
  assert.equal(await bus.keys!.get('KeyedCounter', 'c1'), before);
  await bus.close();
});

test('a keyed handler that publishes and then fails once: its publishes (publish and publishBatch) are stored once', async () => {
  const bus = await fresh();
  const type = uniq('flaky.in');
  const out = uniq('flaky.out');
  let attempts = 0;
  class Flaky extends BaseAgent {
    static subscriptions = [type];
    static key = 'subject' as const;
    static options = { backoff: { initialMs: 1, maxMs: 5 } };
    async handle(_e: CloudEvent, ctx: KeyedContext<number | null>) {
      await ctx.publish(out, { first: true });
      await ctx.publishBatch([{ type: out, data: { batch: 1 } }, { type: out, data: { batch: 2 } }]);
      if (attempts++ === 0) throw new Error('fails once, after publishing');
      ctx.state = (ctx.state ?? 0) + 1;
    }
  }
  const host = new AgentHost({ bus, agents: [Flaky], logger });
  await host.start();
  await bus.publish(type, {}, { subject: 'f1' });
  await waitFor('handled on the second attempt', async () => (await stateOf(bus, 'Flaky', 'f1')) === 1);
  assert.is(attempts, 2);
  const events = await stored(bus, out);
  assert.equal(events.map((e) => e.data), [{ first: true }, { batch: 1 }, { batch: 2 }], 'each publish stored once');
  assert.is(new Set(events.map((e) => e.id)).size, 3);
  await host.stop();
  await bus.close();
});

test('ctx.waitFor in agents: static waitsFor types are read, an approval resumes the handler (duration timeout), a grant no wait takes is acknowledged (handle() is not called for it), its publishes stored once; an unkeyed agent is refused naming it', async () => {
  const bus = await fresh();
  const created = uniq('task.created');
  const granted = uniq('approval.granted');
  const approved = uniq('task.approved');
  const plainType = uniq('plain.in');
  let plainErr: unknown;
  class Planner extends BaseAgent {
    static subscriptions = [created];
    static waitsFor = [granted];
    static key = 'subject' as const;
    async handle(_e: CloudEvent, ctx: KeyedContext<{ step: string } | null>) {
      ctx.state = { step: 'awaiting_approval' };
      const ok = await ctx.waitFor<{ by: string }>(granted, { timeout: '1m', match: (m) => m.data.by !== '' });
      ctx.state.step = 'approved';
      await ctx.publish(approved, { by: ok.data.by }, { subject: ctx.key });
    }
  }
  class Plain extends BaseAgent {
    static subscriptions = [plainType];
    async handle(_e: CloudEvent, ctx: KeyedContext<unknown>) {
      plainErr = await ctx.waitFor(granted, { timeout: 100 }).catch((x: unknown) => x);
    }
  }
  const host = new AgentHost({ bus, agents: [Planner, Plain], logger });
  await host.start();
  await bus.publish(granted, { by: 'nobody waits' }, { subject: 'early' });
  await bus.publish(created, {}, { subject: 't1' });
  await new Promise((r) => setTimeout(r, 500)); // t1's handler waits by now (or the grant queues behind it)
  await bus.publish(granted, { by: 'ann' }, { subject: 't1' });
  await waitFor('approved', async () => ((await stateOf(bus, 'Planner', 't1')) as { step: string } | undefined)?.step === 'approved');
  assert.equal((await stored(bus, approved)).map((e) => [e.subject, e.data]), [['t1', { by: 'ann' }]]);
  assert.equal(await bus.deadLetters.list({ group: 'Planner' }), [], 'the grant nobody waited for is acknowledged, not a no_handler dead letter');
  await bus.publish(plainType, {});
  await waitFor('plain handled', () => plainErr !== undefined);
  assert.instance(plainErr, ValidationError);
  assert.ok(String((plainErr as Error).message).includes('agent Plain') && String((plainErr as Error).message).includes('keyed agents only'), String(plainErr));
  await host.stop();
  await bus.close();
});

test('ctx.step in agents: a keyed agent\'s step runs once across a retry; a replay runs it again unrecorded and leaves the live state; an unkeyed agent is refused naming it', async () => {
  const bus = await fresh();
  const ticket = uniq('ticket.created');
  const plainType = uniq('plain.in');
  const calls: string[] = [];
  let plainErr: unknown;
  class Intake extends BaseAgent {
    static subscriptions = [ticket];
    static key = 'subject' as const;
    static options = { backoff: { initialMs: 20 } };
    async handle(_e: CloudEvent, ctx: KeyedContext<{ summary: string } | null>) {
      const summary = await ctx.step('llm', async () => (calls.push(ctx.replaying ? 'replay' : `attempt ${ctx.attempt}`), `summary of ${ctx.key}`));
      if (ctx.attempt === 1 && !ctx.replaying) throw new Error('fails after the step');
      ctx.state = { summary };
    }
  }
  class Plain extends BaseAgent {
    static subscriptions = [plainType];
    async handle(_e: CloudEvent, ctx: KeyedContext<unknown>) {
      plainErr = await ctx.step('x', () => 1).catch((x: unknown) => x);
    }
  }
  const host = new AgentHost({ bus, agents: [Intake, Plain], logger });
  await host.start();
  await bus.publish(ticket, {}, { subject: 't1' });
  await waitFor('committed', async () => (await stateOf(bus, 'Intake', 't1')) !== undefined);
  assert.equal(await stateOf(bus, 'Intake', 't1'), { summary: 'summary of t1' });
  assert.equal(calls, ['attempt 1'], 'the retry returned the recorded result');
  const before = await bus.keys!.get('Intake', 't1');
  const result = await host.replay('Intake');
  assert.is(result.handled, 1);
  assert.equal(calls, ['attempt 1', 'replay'], 'a replay runs the step\'s function (nothing recorded)');
  assert.equal(await bus.keys!.get('Intake', 't1'), before, 'live state untouched by the replay');
  await bus.publish(plainType, {});
  await waitFor('plain handled', () => plainErr !== undefined);
  assert.instance(plainErr, ValidationError);
  assert.ok(String((plainErr as Error).message).includes('agent Plain') && String((plainErr as Error).message).includes('keyed agents only'), String(plainErr));
  await host.stop();
  await bus.close();
});

test('ctx.request in agents: durable in a keyed agent (asked once across a retry, published with the agent\'s keyed source and the trace); durable: false asks again; a replay sends no request (REPLAY_REQUEST, listed), with publish: true asks in memory; durable: true (or not a boolean) in an unkeyed agent is refused naming it', async () => {
  const bus = await fresh();
  const plan = uniq('plan.created');
  const ask = uniq('tool.run');
  const plainType = uniq('plain.in');
  const asked: Array<{ mode: string; source: string; traceparent?: string }> = [];
  let plainErr: unknown;
  let plainYes: unknown;
  class Tool extends BaseAgent {
    static subscriptions = [ask];
    handle(e: CloudEvent<{ mode: string }>) {
      asked.push({ mode: e.data.mode, source: e.source, traceparent: e.traceparent });
      return { for: e.data.mode, call: asked.length };
    }
  }
  class Planner extends BaseAgent {
    static subscriptions = [plan];
    static key = 'subject' as const;
    static options = { backoff: { initialMs: 20 } };
    async handle(_e: CloudEvent, ctx: KeyedContext<unknown>) {
      const durable = await ctx.request(ask, { mode: ctx.replaying ? 'replay' : 'durable' }, { timeoutMs: 10_000 });
      const inMemory = ctx.replaying ? null : await ctx.request(ask, { mode: 'memory' }, { timeoutMs: 10_000, durable: false });
      // The pattern of agents written before requests were durable: an in-memory request, its answer recorded by the step.
      const stepped = ctx.replaying ? null : await ctx.step('ask', () => ctx.request(ask, { mode: 'step' }, { timeoutMs: 10_000 }));
      if (ctx.attempt === 1 && !ctx.replaying) throw new Error('fails after its requests');
      ctx.state = { durable, inMemory, stepped };
    }
  }
  class Plain extends BaseAgent {
    static subscriptions = [plainType];
    async handle(_e: CloudEvent, ctx: KeyedContext<unknown>) {
      plainErr = await ctx.request(ask, { mode: 'plain' }, { durable: true }).catch((x: unknown) => x);
      plainYes = await ctx.request(ask, { mode: 'plain' }, { durable: 'yes' } as never).catch((x: unknown) => x);
    }
  }
  const host = new AgentHost({ bus, agents: [Tool, Planner, Plain], logger });
  await host.start();
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  await bus.publish(plan, {}, { subject: 'p1', traceparent });
  await waitFor('committed', async () => (await stateOf(bus, 'Planner', 'p1')) !== undefined);
  const state = (await stateOf(bus, 'Planner', 'p1')) as { durable: { call: number }; inMemory: { call: number }; stepped: { call: number } };
  assert.equal(asked.map((a) => a.mode), ['durable', 'memory', 'step', 'memory'], 'the durable request and the step asked once, the in-memory one on each run');
  assert.equal(state.durable, { for: 'durable', call: 1 }, 'the retry got the recorded reply');
  assert.equal(state.inMemory, { for: 'memory', call: 4 });
  assert.equal(state.stepped, { for: 'step', call: 3 }, 'the step recorded the in-memory answer');
  assert.is(asked[0].source, '/agentbus/keyed/Planner');
  assert.is(asked[2].source, asked[1].source, 'a request inside a step is sent as an in-memory one, with the agent\'s source');
  assert.ok(asked[0].traceparent?.startsWith('00-0af7651916cd43dd8448eb211c80319c-'), `the trace goes on: ${asked[0].traceparent}`);
  // A replay that stores nothing sends no request: captured with the publishes, the call refused.
  const result = await host.replay('Planner');
  assert.is(result.handled, 0);
  assert.is(result.failed.length, 1);
  assert.ok(result.failed[0]!.error.includes('ReplayRequestError') && result.failed[0]!.error.includes('--publish'), result.failed[0]!.error);
  assert.equal(result.published.events.map((e) => [e.type, e.data, e.request]), [[ask, { mode: 'replay' }, true]], 'listed as a captured request');
  assert.is(asked.length, 4, 'the replier did not run');
  const published = await host.replay('Planner', { publish: true });
  assert.is(published.handled, 1);
  assert.equal(asked.at(-1)?.mode, 'replay', 'a replay with publish: true asks in memory');
  assert.is(asked.length, 5);
  await bus.publish(plainType, {});
  await waitFor('plain handled', () => plainErr !== undefined);
  assert.instance(plainErr, ValidationError);
  assert.ok(String((plainErr as Error).message).includes('agent Plain') && String((plainErr as Error).message).includes('keyed agents only'), String(plainErr));
  await waitFor('plain durable "yes" handled', () => plainYes !== undefined);
  assert.instance(plainYes, ValidationError, 'durable must be a boolean in an unkeyed agent too');
  assert.ok(String((plainYes as Error).message).includes('durable yes in agent Plain'), String(plainYes));
  assert.is(asked.filter((a) => a.mode === 'plain').length, 0, 'nothing asked');
  await host.stop();
  await bus.close();
});

test('agent checks: a machine without a key, keyed options on an unkeyed agent, a bad key or machine are refused naming the agent', () => {
  const m = setup({}).createMachine({ id: 'm', initial: 'a', states: { a: {} } });
  class NoKey extends BaseAgent {
    static subscriptions = ['a.b'];
    static machine = m;
  }
  class Plain extends BaseAgent {
    static subscriptions = ['a.b'];
    static options = { maxActiveKeys: 10 };
    handle() {}
  }
  class PlainEntry extends BaseAgent {
    static subscriptions = ['a.b'];
    handle() {}
  }
  class BadKey extends BaseAgent {
    static subscriptions = ['a.b'];
    static key = 'id' as never;
    handle() {}
  }
  class BadMachine extends BaseAgent {
    static subscriptions = ['a.b'];
    static key = 'subject' as const;
    static machine = { states: {} } as never;
  }
  class MachineAndInitial extends BaseAgent {
    static subscriptions = ['a.b'];
    static key = 'subject' as const;
    static machine = m;
    static initialState = () => ({ n: 0 });
  }
  const refused = (agents: ConstructorParameters<typeof AgentHost>[0]['agents'], ...mentions: string[]) => {
    try {
      new AgentHost({ bus: { subscribe() {} } as never, agents, logger });
    } catch (err) {
      assert.instance(err, ValidationError);
      for (const w of mentions) assert.ok((err as Error).message.includes(w), `${(err as Error).message} lacks ${w}`);
      return;
    }
    assert.unreachable(`accepted ${mentions.join(' ')}`);
  };
  refused([NoKey], 'agent NoKey', 'static machine', 'declare static key');
  refused([Plain], 'agent Plain', 'maxActiveKeys apply to keyed agents only');
  refused([{ agent: PlainEntry, options: { stateTtlMs: 1000, maxStateBytes: 1000 } }], 'agent PlainEntry', 'maxStateBytes, stateTtlMs apply to keyed agents only');
  refused([BadKey], 'agent BadKey', '"id"', "'subject' or a function");
  refused([BadMachine], 'agent BadMachine', 'XState v5 machine');
  refused([MachineAndInitial], 'agent MachineAndInitial', 'initialState');
  class WaitsUnkeyed extends BaseAgent {
    static subscriptions = ['a.b'];
    static waitsFor = ['a.c'];
    handle() {}
  }
  refused([WaitsUnkeyed], 'agent WaitsUnkeyed', 'static waitsFor is for keyed agents only');
});

test.run();
