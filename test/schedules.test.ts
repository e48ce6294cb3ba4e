// Durable time for agents (runtime/schedules.ts), on both stores: `static schedules` fire once per
// tick with several hosts running the agent; ctx.schedule's reminder fires later, with the key as
// subject, stored once although its handler ran twice.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentHost, BaseAgent, createBus, type Bus, type CloudEvent, type KeyedContext } from '../index.js';
import { redisForTests } from './helpers/redis.js';
import { uniq, waitFor } from './helpers/index.js';

const quiet = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'agentbus-schedules-'));
const redis = await redisForTests('schedules on redis');

const stores: Array<[string, () => Record<string, unknown>]> = [['sqlite', () => ({ adapter: 'sqlite', path: join(dir, 'bus.db') })]];
if (redis) stores.push(['redis', () => ({ adapter: 'redis', url: redis.url })]);

for (const [name, options] of stores) {
  const test = suite(`schedules (${name})`);
  const made: Array<{ close(): Promise<unknown> }> = [];
  const bus = async (): Promise<Bus> => {
    const b = await createBus({ ...options(), logger: quiet } as never);
    made.push(b);
    return b;
  };
  test.after.each(async () => {
    for (const m of made.splice(0).reverse()) await m.close().catch(() => {});
  });
  if (name === 'redis') test.after(() => redis?.server?.stop());

  test('a schedule every second on three hosts fires once per tick', async () => {
    const type = uniq('tick');
    const ids: string[] = [];
    const times: number[] = [];
    class Clock extends BaseAgent {
      static agentName = uniq('Clock');
      static schedules = [{ every: '1s', type }];
    }
    class Counter extends BaseAgent {
      static agentName = uniq('Counter');
      static subscriptions = [type];
      static options = { concurrency: 8 };
      handle(e: CloudEvent) {
        ids.push(e.id);
        times.push(Date.now());
      }
    }
    const hosts = [new AgentHost({ bus: await bus(), agents: [Clock, Counter], logger: quiet })];
    for (let i = 0; i < 2; i++) hosts.push(new AgentHost({ bus: await bus(), agents: [Clock], logger: quiet }));
    for (const h of hosts) await h.start();
    made.unshift(...hosts.map((h) => ({ close: () => h.stop() })));
    await waitFor('three ticks', () => ids.length >= 3, 15_000);
    await new Promise((r) => setTimeout(r, 600));
    for (const t of times) assert.ok(t % 1000 < 900, 'fired right after its tick, never early');
    // Each second's tick once, though three hosts stored it ahead of time.
    const perTick = new Map<number, number>();
    for (const t of times) perTick.set(Math.floor(t / 1000), (perTick.get(Math.floor(t / 1000)) ?? 0) + 1);
    assert.equal([...perTick.values()], [...perTick.values()].map(() => 1), `events per tick: ${[...perTick.values()].join(', ')}`);
    assert.is(new Set(ids).size, ids.length);
  });

  test('ctx.schedule: a reminder fires later with the key as subject, stored once although its handler ran twice', async () => {
    const start = uniq('start');
    const due = uniq('due');
    const fired: Array<{ subject?: string; at: number }> = [];
    let attempts = 0;
    let scheduledAt = 0;
    class Task extends BaseAgent {
      static agentName = uniq('Task');
      static subscriptions = [start, due];
      static key = 'subject';
      static options = { backoff: { initialMs: 10, maxMs: 10 } };
      async handle(e: CloudEvent, ctx: KeyedContext<null>) {
        if (e.type === due) return void fired.push({ subject: e.subject, at: Date.now() });
        scheduledAt ||= Date.now();
        await ctx.schedule(due, { why: 'deadline' }, { in: 400 });
        if (++attempts === 1) throw new Error('fails after scheduling, once');
      }
    }
    const host = new AgentHost({ bus: await bus(), agents: [Task], logger: quiet });
    await host.start();
    made.unshift({ close: () => host.stop() });
    await host.bus.publish(start, {}, { subject: 'task-7' });
    await waitFor('reminder', () => fired.length >= 1, 10_000);
    await new Promise((r) => setTimeout(r, 800));
    assert.is(attempts, 2);
    assert.is(fired.length, 1, 'the redelivered handler stored its reminder once');
    assert.is(fired[0].subject, 'task-7');
    assert.ok(fired[0].at - scheduledAt >= 390, `fired ${fired[0].at - scheduledAt} ms after scheduling (asked 400)`);
  });

  test('named reminders per key: scheduling the name again replaces it, cancelSchedule removes it, a redelivered handler leaves one; another key keeps its own', async () => {
    const cmd = uniq('cmd');
    const due = uniq('due');
    const fired: Array<[string | undefined, unknown]> = [];
    const cancelled: boolean[] = [];
    let failedOnce = false;
    class Task extends BaseAgent {
      static agentName = uniq('Task');
      static subscriptions = [cmd, due];
      static key = 'subject';
      static options = { backoff: { initialMs: 10, maxMs: 10 } };
      async handle(e: CloudEvent<{ op: string; n?: number }>, ctx: KeyedContext<null>) {
        if (e.type === due) return void fired.push([e.subject, e.data]);
        if (e.data.op === 'cancel') return void cancelled.push(await ctx.cancelSchedule('deadline'));
        // Not awaited: the cancel and the schedule still run in call order.
        const c = ctx.cancelSchedule('deadline');
        await ctx.schedule(due, { n: e.data.n }, { in: 2000, name: 'deadline' });
        await c;
        if (e.data.n === 2 && !failedOnce) {
          failedOnce = true;
          throw new Error('fails after rescheduling, once');
        }
      }
    }
    const host = new AgentHost({ bus: await bus(), agents: [Task], logger: quiet });
    await host.start();
    made.unshift({ close: () => host.stop() });
    const b = host.bus;
    await b.publish(cmd, { op: 'schedule', n: 1 }, { subject: 'k1' });
    await b.publish(cmd, { op: 'schedule', n: 2 }, { subject: 'k1' }); // replaces n 1; its handler runs twice
    await b.publish(cmd, { op: 'schedule', n: 3 }, { subject: 'k2' });
    await b.publish(cmd, { op: 'schedule', n: 4 }, { subject: 'k3' });
    await b.publish(cmd, { op: 'cancel' }, { subject: 'k3' });
    await waitFor('the cancel handled', () => cancelled.length === 1, 10_000);
    assert.equal(cancelled, [true]);
    const names = (await b.schedules!.list({ type: due })).map((p) => p.name).sort();
    assert.equal(names, [JSON.stringify([Task.agentName, 'deadline', 'k1']), JSON.stringify([Task.agentName, 'deadline', 'k2'])]);
    await waitFor('two reminders', () => fired.length >= 2, 10_000);
    await new Promise((r) => setTimeout(r, 800));
    assert.ok(failedOnce);
    assert.equal(fired.sort(), [['k1', { n: 2 }], ['k2', { n: 3 }]]);
  });

  test.run();
}
