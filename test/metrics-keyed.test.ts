// The keyed agents' metrics (agentbus_keyed_*) of hosts on a real SQLite file: the cache gauges,
// the counters, and the owner gauge of two hosts sharing one keyed agent.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentHost, BaseAgent, createBus, WaitTimeoutError, type CloudEvent, type KeyedContext } from '../index.js';
import { uniq, waitFor } from './helpers/index.js';

const logger = pino({ level: 'silent' });

/** One metric's value on `host` for agent `agent` (undefined when the series is absent). */
async function metric(host: AgentHost, name: string, agent: string): Promise<number | undefined> {
  const text = await host.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{agent="${agent}"} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

test('a keyed agent exports active keys, state bytes, loads, evictions, commits, takeovers, conflicts and owner, per agent', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'agentbus-mk-')), 'bus.db');
  const bus = await createBus({ adapter: 'sqlite', path, logger });
  const type = uniq('mk.count');
  class Tally extends BaseAgent {
    static subscriptions = [type];
    static key = 'subject' as const;
    static initialState = () => ({ n: 0 });
    static options = { maxActiveKeys: 2, concurrency: 8 };
    handle(_e: CloudEvent, ctx: KeyedContext<{ n: number }>) {
      ctx.state.n++;
    }
  }
  class Other extends BaseAgent {
    static subscriptions = [uniq('mk.other')];
    handle() {}
  }
  const host = new AgentHost({ bus, agents: [Tally, Other], logger, hostId: 'mk-1' });
  await host.start();
  const m = (name: string) => metric(host, name, 'Tally');
  await waitFor('the owner gauge', async () => (await m('agentbus_keyed_owner')) === 1);
  assert.is(await m('agentbus_keyed_takeovers_total'), 1, 'took the group once, at start');
  await bus.publishBatch(['a', 'b', 'c'].map((subject) => ({ type, data: {}, subject })));
  await waitFor('c counted', async () => ((await bus.keys!.get('Tally', 'c'))?.state as { n: number } | undefined)?.n === 1);
  // Three keys loaded once each; past maxActiveKeys 2 the least recently used (a) is evicted.
  await waitFor('the cache within maxActiveKeys', async () => (await m('agentbus_keyed_active_keys')) === 2);
  assert.is(await m('agentbus_keyed_loads_total'), 3);
  assert.is(await m('agentbus_keyed_evictions_total'), 1);
  assert.is(await m('agentbus_keyed_state_bytes'), 2 * JSON.stringify({ n: 1 }).length);
  assert.ok((await m('agentbus_keyed_commits_total'))! >= 1);
  assert.is(await m('agentbus_keyed_conflicts_total'), 0);
  // c, loaded last (in the same batch as a and b), is held in memory: its next event loads nothing.
  await bus.publish(type, {}, { subject: 'c' });
  await waitFor('c counted twice', async () => ((await bus.keys!.get('Tally', 'c'))?.state as { n: number } | undefined)?.n === 2);
  assert.is(await m('agentbus_keyed_loads_total'), 3, 'c was held in memory');
  // c is erased under the owner (agentbus state rm): its next commit finds the record gone.
  assert.is(await bus.keys!.remove('Tally', ['c']), 1);
  await bus.publish(type, {}, { subject: 'c' });
  await waitFor('a conflict counted', async () => (await m('agentbus_keyed_conflicts_total')) === 1);
  await waitFor('c counted from its initial state', async () => ((await bus.keys!.get('Tally', 'c'))?.state as { n: number } | undefined)?.n === 1);
  // An unkeyed agent has no keyed series.
  assert.is(await metric(host, 'agentbus_keyed_owner', 'Other'), undefined);
  await host.stop();
  // Counts of the closed subscription are kept; the gauges fall to 0.
  assert.ok((await m('agentbus_keyed_loads_total'))! >= 4);
  assert.is(await m('agentbus_keyed_owner'), 0);
  assert.is(await m('agentbus_keyed_active_keys'), 0);
  await bus.close();
});

test('owner gauge: 1 on the host that runs the group, 0 on the one standing by; the standby takes over when the owner stops', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'agentbus-mk-')), 'bus.db');
  const type = uniq('mk.own');
  const seen: string[] = [];
  class Shared extends BaseAgent {
    static subscriptions = [type];
    static key = 'subject' as const;
    static options = { claimIdleMs: 3000 };
    handle(e: CloudEvent, ctx: KeyedContext<number | null>) {
      ctx.state = (ctx.state ?? 0) + 1;
      seen.push(e.id);
    }
  }
  const bus1 = await createBus({ adapter: 'sqlite', path, logger });
  const bus2 = await createBus({ adapter: 'sqlite', path, logger });
  const first = new AgentHost({ bus: bus1, agents: [Shared], logger, hostId: 'mk-first' });
  await first.start();
  await waitFor('first owns', async () => (await metric(first, 'agentbus_keyed_owner', 'Shared')) === 1);
  const second = new AgentHost({ bus: bus2, agents: [Shared], logger, hostId: 'mk-second' });
  await second.start();
  await bus1.publish(type, {}, { subject: 'k' });
  await waitFor('handled', () => seen.length === 1);
  assert.is(await metric(second, 'agentbus_keyed_owner', 'Shared'), 0, 'the second host stands by');
  assert.is(await metric(second, 'agentbus_keyed_takeovers_total', 'Shared'), 0);
  assert.is(await metric(first, 'agentbus_keyed_owner', 'Shared'), 1);
  await first.stop();
  await waitFor('second owns', async () => (await metric(second, 'agentbus_keyed_owner', 'Shared')) === 1);
  assert.is(await metric(second, 'agentbus_keyed_takeovers_total', 'Shared'), 1);
  assert.is(await metric(first, 'agentbus_keyed_owner', 'Shared'), 0);
  await bus2.publish(type, {}, { subject: 'k' });
  await waitFor('handled by the second', () => seen.length === 2);
  assert.equal((await bus2.keys!.get('Shared', 'k'))?.state, 2);
  await second.stop();
  await bus1.close();
  await bus2.close();
});

test('durable waits: handlers waiting now (gauge), waits resumed by a match and waits timed out (counters), per agent', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'agentbus-mk-')), 'bus.db');
  const bus = await createBus({ adapter: 'sqlite', path, logger });
  const ask = uniq('mk.ask');
  const answer = uniq('mk.answer');
  const outcomes: string[] = [];
  class Asker extends BaseAgent {
    static subscriptions = [ask];
    static waitsFor = [answer];
    static key = 'subject' as const;
    static initialState = () => null;
    async handle(e: CloudEvent<{ timeout: number }>, ctx: KeyedContext<string | null>) {
      try {
        await ctx.waitFor(answer, { timeout: e.data.timeout });
        outcomes.push(`${ctx.key} answered`);
      } catch (err) {
        if (!(err instanceof WaitTimeoutError)) throw err;
        outcomes.push(`${ctx.key} timed out`);
      }
    }
  }
  const host = new AgentHost({ bus, agents: [Asker], logger, hostId: 'mk-wait' });
  await host.start();
  const m = (name: string) => metric(host, name, 'Asker');
  await waitFor('the owner gauge', async () => (await m('agentbus_keyed_owner')) === 1);
  assert.equal([await m('agentbus_keyed_waiting'), await m('agentbus_keyed_waits_resumed_total'), await m('agentbus_keyed_waits_timed_out_total')], [0, 0, 0]);
  // Two keys wait an hour, a third 1.5 s.
  await bus.publishBatch([
    { type: ask, subject: 'a', data: { timeout: 3_600_000 } },
    { type: ask, subject: 'b', data: { timeout: 3_600_000 } },
    { type: ask, subject: 'c', data: { timeout: 1500 } },
  ]);
  await waitFor('three handlers waiting', async () => (await m('agentbus_keyed_waiting')) === 3);
  await bus.publish(answer, {}, { subject: 'a' });
  await waitFor('a resumed', async () => (await m('agentbus_keyed_waits_resumed_total')) === 1);
  await waitFor('c timed out', async () => (await m('agentbus_keyed_waits_timed_out_total')) === 1, 10_000);
  await waitFor('one handler still waiting (b)', async () => (await m('agentbus_keyed_waiting')) === 1);
  assert.equal(outcomes.sort(), ['a answered', 'c timed out']);
  await bus.publish(answer, {}, { subject: 'b' });
  await waitFor('b resumed', async () => (await m('agentbus_keyed_waits_resumed_total')) === 2);
  await waitFor('nobody waiting', async () => (await m('agentbus_keyed_waiting')) === 0);
  assert.is(await m('agentbus_keyed_waits_timed_out_total'), 1);
  await host.stop();
  assert.is(await m('agentbus_keyed_waits_resumed_total'), 2, 'counts kept after the stop');
  await bus.close();
});

test.run();
