// examples/agents-pipeline end to end on SQLite and Redis: two hosts run the Planner (keyed, state
// per task), the Tool (plain), the Approval machine (keyed, XState) and the Releaser (keyed, a
// durable ctx.waitFor for a sign-off); 100 tasks are published; the host owning the Planner is
// SIGKILLed mid-task and another started: every task completes once, its state says done, its review
// runs once, and each approved task is released once. A second scenario SIGKILLs the Releaser's
// owner while every task waits for its sign-off. A third has tools that never answer for some tasks:
// their deadline reminder expires them once; the others complete and their deadlines never fire. A
// fourth gives no sign-off: the Releaser's wait times out and each approved task expires once.
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { CloudEvent, TopicStats } from '../../index.js';
import { REPLY_PREFIX } from '../../bus/event.js';
import { createBus } from '../../runtime/config.js';
import type { Task } from '../../examples/agents-pipeline/agents.js';
import { exampleStores } from '../helpers/example.js';
import { startHost, type HostProcess } from '../helpers/host.js';
import { sleep, waitFor } from '../helpers/index.js';

const AGENTS = 'examples/agents-pipeline';
const TASKS = 100;
/** The Planner's owner is killed at its KILL_AT-th "task completed" log line. */
const KILL_AT = 30;
/**
 * Nothing left to deliver. Reply topics are left out: a killed host's one keeps the replies sent to
 * it after it died (nobody reads them; the Planner's rerun asked again on another host).
 */
const settled = (stats: TopicStats[]) => stats.every((t) => t.type.startsWith(REPLY_PREFIX) || t.groups.every((g) => g.pending === 0 && g.lag === 0));
const RECORDED = ['task.deadline', 'task.completed', 'task.failed', 'review.requested', 'task.approved', 'task.rejected', 'release.requested', 'task.released', 'task.expired'];

for (const store of await exampleStores('agents-pipeline')) {
  const s = suite(`agents-pipeline on ${store.name}`);
  s('2 hosts, 100 tasks (each step asked of the Tool with ctx.request), the Planner owner SIGKILLed mid-task, a third host started: each task completed once, state done, reviewed once', async () => {
    // Tool runs of 20 ms keep tasks in flight while the tasks are published; a dead host's work is
    // taken over after 1.5 s (PIPELINE_CLAIM_MS) instead of the 10 s the example uses by default.
    const env: Record<string, string> = { ...store.env, AGENTBUS_REDIS_PREFIX: `pipe${Date.now()}:`, PIPELINE_TOOL_MS: '20', PIPELINE_CLAIM_MS: '1500' };
    const bus = await createBus({ logger: pino({ level: 'warn' }) }, { ...process.env, ...env });
    // A subscriber of its own group records every outcome, per type and task id.
    const seen = new Map<string, Map<string, number>>(RECORDED.map((t) => [t, new Map()]));
    const count = (type: string) => seen.get(type)!.size;
    const recorder = await bus.subscribe({ group: 'test-recorder', types: RECORDED, concurrency: 16 }, (e: CloudEvent<{ task: string }>) => {
      const m = seen.get(e.type)!;
      m.set(e.data.task, (m.get(e.data.task) ?? 0) + 1);
    });
    // Closed however the test ends: an open subscription would keep this file running.
    try {
      const hosts: HostProcess[] = [await startHost(AGENTS, env), await startHost(AGENTS, env)];
      const ids = Array.from({ length: TASKS }, (_, i) => `task-${i}`);

      // 10 tasks every 150 ms: tasks keep arriving while earlier ones are planned, run and completed.
      const publishing = (async () => {
        for (let i = 0; i < TASKS; i += 10) {
          await bus.publishBatch(ids.slice(i, i + 10).map((id) => ({ type: 'task.created', subject: id, data: { goal: `report on ${id}` } })));
          await sleep(150);
        }
      })();

      // The Planner group has one owner at a time: the host logging "task completed".
      const completions = (h: HostProcess) => h.out.filter((l) => l.includes('"msg":"task completed"')).length;
      await waitFor('the Planner owner has logged a completion', () => hosts.some((h) => completions(h) > 0), 20_000);
      const [owner, standby] = completions(hosts[0]) > 0 ? [hosts[0], hosts[1]] : [hosts[1], hosts[0]];
      // The moment of the kill: the owner's 30th "task completed" log line. The handler writes it
      // after publishing task.completed and setting the task's state to done, before it returns; the
      // state is committed with the acknowledgement only after that, so the SIGKILL races the commit
      // (a redelivery must not complete the task twice). The owner also holds tasks planned with tool
      // results outstanding and tool runs in flight, and tasks are still being published.
      assert.ok(completions(owner) < KILL_AT, 'the kill is armed before the 30th completion');
      const kill = () => {
        if (completions(owner) < KILL_AT || owner.proc.killed) return;
        owner.proc.kill('SIGKILL');
        owner.proc.stdout!.off('data', kill);
      };
      owner.proc.stdout!.on('data', kill);
      await waitFor(`the owner's ${KILL_AT}th completion`, () => owner.proc.killed, 20_000);
      await owner.exited;
      assert.is(completions(standby), 0, 'one Planner owner at a time');
      const atKill = count('task.completed');
      assert.ok(atKill < TASKS, `killed mid-way (${atKill} of ${TASKS} completed)`);
      hosts.push(await startHost(AGENTS, env));
      await publishing;

      await waitFor('every task completed', () => count('task.completed') === TASKS, 25_000, 50);
      await waitFor('every review requested', () => count('review.requested') === TASKS, 10_000, 50);
      // Anything left to deliver (a repeat of a completion, say) would show up here.
      await waitFor('nothing pending', async () => settled(await bus.stats()), 20_000, 100);
      for (const type of ['task.completed', 'review.requested']) {
        const twice = [...seen.get(type)!].filter(([, n]) => n !== 1);
        assert.equal(twice, [], `${type} once per task`);
      }
      assert.is(count('task.failed'), 0);
      assert.equal([count('task.deadline'), count('task.expired')], [0, 0], 'no deadline fired (10 min by default, cancelled at completion)');
      const planner = async (id: string) => (await bus.keys!.get('Planner', id))?.state as Task;
      const tasks = await Promise.all(ids.map(planner));
      tasks.forEach((task, i) => {
        assert.is(task.step, 'done', ids[i]);
        assert.ok(task.results.every((r) => typeof r === 'string'), `${ids[i]}: every step's result recorded`);
      });
      assert.ok(tasks.some((t) => t.attempts.some((a) => a > 1)), 'some step failed once and was asked again');
      for (const id of ids) {
        const review = (await bus.keys!.get('Approval', id))?.state as { value: string; context: { task: string } };
        assert.equal([review.value, review.context.task], ['in_review', id]);
      }

      // A repeated task.created (a client publishing it twice) changes nothing: no new tool run, no second completion.
      await bus.publishBatch([{ type: 'task.created', subject: ids[0], data: { goal: 'a repeat' } }]);
      // A person decides every review (even tasks approved); the machines publish the outcome once.
      await bus.publishBatch(ids.map((id, i) => ({ type: 'review.decided', subject: id, data: { approved: i % 2 === 0, by: 'ada' } })));
      await waitFor('every review decided', () => count('task.approved') + count('task.rejected') === TASKS, 15_000, 50);
      // Each approved task now waits for its release sign-off (release.ts, ctx.waitFor): a person signs them off.
      await waitFor('every approved task asks for its sign-off', () => count('release.requested') === TASKS / 2, 15_000, 50);
      await bus.publishBatch(ids.filter((_, i) => i % 2 === 0).map((id) => ({ type: 'release.signed', subject: id, data: { by: 'grace' } })));
      await waitFor('every approved task released', () => count('task.released') === TASKS / 2, 15_000, 50);
      await waitFor('nothing pending', async () => settled(await bus.stats()), 20_000, 100);
      assert.equal([count('task.approved'), count('task.rejected')], [TASKS / 2, TASKS / 2]);
      const states = await Promise.all(ids.map(async (id) => ((await bus.keys!.get('Approval', id))?.state as { value: string }).value));
      assert.equal(states, ids.map((_, i) => (i % 2 === 0 ? 'approved' : 'rejected')));
      assert.equal([await planner(ids[0]), await planner(ids[1])], tasks.slice(0, 2));
      for (const [type, per] of seen) assert.equal([...per].filter(([, n]) => n !== 1), [], `${type} at most once per task`);

      for (const h of hosts.slice(1)) h.proc.kill('SIGTERM');
      assert.equal(await Promise.all(hosts.slice(1).map((h) => h.exited)), [0, 0]);
    } finally {
      await recorder.close();
      await bus.close();
    }
  });

  s('the Releaser owner SIGKILLed while 8 approved tasks wait for their sign-off (ctx.waitFor): sign-offs given while it is down and after are each taken once, every task released once by its signer, with the notes the killed owner drafted (ctx.step)', async () => {
    const env: Record<string, string> = { ...store.env, AGENTBUS_REDIS_PREFIX: `rel${Date.now()}:`, PIPELINE_CLAIM_MS: '1500' };
    const bus = await createBus({ logger: pino({ level: 'warn' }) }, { ...process.env, ...env });
    const seen = new Map<string, Map<string, number>>(RECORDED.map((t) => [t, new Map()]));
    const count = (type: string) => seen.get(type)!.size;
    const released = new Map<string, string>();
    const draftedBy = new Map<string, number>();
    const recorder = await bus.subscribe({ group: 'test-recorder', types: RECORDED, concurrency: 16 }, (e: CloudEvent<{ task: string; by?: string; notes?: { draftedBy: number } }>) => {
      const m = seen.get(e.type)!;
      m.set(e.data.task, (m.get(e.data.task) ?? 0) + 1);
      if (e.type === 'task.released') {
        released.set(e.data.task, e.data.by!);
        draftedBy.set(e.data.task, e.data.notes!.draftedBy);
      }
    });
    try {
      const hosts: HostProcess[] = [await startHost(AGENTS, env), await startHost(AGENTS, env)];
      const ids = Array.from({ length: 8 }, (_, i) => `rel-${i}`);
      await bus.publishBatch(ids.map((id) => ({ type: 'task.created', subject: id, data: { goal: `ship ${id}` } })));
      await waitFor('every review requested', () => count('review.requested') === ids.length, 20_000, 50);
      await bus.publishBatch(ids.map((id) => ({ type: 'review.decided', subject: id, data: { approved: true, by: 'ada' } })));
      const waiting = (h: HostProcess) => h.out.filter((l) => l.includes('"msg":"waiting for sign-off"')).length;
      await waitFor('every task waiting for its sign-off', () => hosts.some((h) => waiting(h) === ids.length), 20_000, 50);
      const [owner, standby] = waiting(hosts[0]) === ids.length ? [hosts[0], hosts[1]] : [hosts[1], hosts[0]];
      await sleep(500); // past the log line: each handler is parked inside ctx.waitFor, its wait recorded
      // The moment of the kill: every Releaser handler parked in ctx.waitFor (release.requested
      // published, wait recorded, task.approved not acknowledged), no sign-off given yet.
      owner.proc.kill('SIGKILL');
      await owner.exited;
      // Half the sign-offs while no host owns the Releaser (the standby takes over after 1.5 s).
      await bus.publishBatch(ids.slice(0, 4).map((id) => ({ type: 'release.signed', subject: id, data: { by: 'while-down' } })));
      await waitFor('the first half released by the standby', () => count('task.released') === 4, 20_000, 50);
      await bus.publishBatch(ids.slice(4).map((id) => ({ type: 'release.signed', subject: id, data: { by: 'after' } })));
      await waitFor('every task released', () => count('task.released') === ids.length, 20_000, 50);
      await waitFor('nothing pending', async () => settled(await bus.stats()), 20_000, 100);
      assert.is(waiting(standby), ids.length, 'the standby ran each handler again from its start');
      for (const [type, per] of seen) assert.equal([...per].filter(([, n]) => n !== 1), [], `${type} at most once per task`);
      assert.is(count('release.requested'), ids.length, 'each sign-off asked for once (stored once across the rerun)');
      assert.is(count('task.expired'), 0);
      assert.equal(Object.fromEntries(released), Object.fromEntries(ids.map((id, i) => [id, i < 4 ? 'while-down' : 'after'])));
      // The notes were drafted (ctx.step) before the wait, by the killed owner: the standby's runs got them recorded.
      assert.equal(Object.fromEntries(draftedBy), Object.fromEntries(ids.map((id) => [id, owner.proc.pid])), 'notes drafted once, by the killed owner');
      for (const id of ids) assert.equal((await bus.keys!.get('Releaser', id))?.state, { step: 'released', by: id < 'rel-4' ? 'while-down' : 'after' });
      standby.proc.kill('SIGTERM');
      assert.is(await standby.exited, 0);
    } finally {
      await recorder.close();
      await bus.close();
    }
  });
  s('a tool that never answers for some tasks: their deadline reminder fires and each expires once; the others complete and their cancelled deadlines never fire', async () => {
    // Deadlines of 4 s; a tool reply awaited 1.5 s at most; tools of goals containing "silent" never answer.
    const env: Record<string, string> = { ...store.env, AGENTBUS_REDIS_PREFIX: `dl${Date.now()}:`, PIPELINE_CLAIM_MS: '1500', PIPELINE_DEADLINE_MS: '4000', PIPELINE_TOOL_TIMEOUT_MS: '1500', PIPELINE_TOOL_SILENT: 'silent' };
    const bus = await createBus({ logger: pino({ level: 'warn' }) }, { ...process.env, ...env });
    const seen = new Map<string, Map<string, number>>(RECORDED.map((t) => [t, new Map()]));
    const count = (type: string) => seen.get(type)!.size;
    const recorder = await bus.subscribe({ group: 'test-recorder', types: RECORDED, concurrency: 16 }, (e: CloudEvent<{ task: string }>) => {
      const m = seen.get(e.type)!;
      m.set(e.data.task, (m.get(e.data.task) ?? 0) + 1);
    });
    try {
      const hosts: HostProcess[] = [await startHost(AGENTS, env), await startHost(AGENTS, env)];
      const silent = Array.from({ length: 4 }, (_, i) => `silent-${i}`);
      const answered = Array.from({ length: 8 }, (_, i) => `ok-${i}`);
      await bus.publishBatch([...silent, ...answered].map((id) => ({ type: 'task.created', subject: id, data: { goal: `report on ${id}` } })));
      await waitFor('the answered tasks completed', () => count('task.completed') === answered.length, 20_000, 50);
      await waitFor('the silent tasks expired', () => count('task.expired') === silent.length, 20_000, 50);
      // Past the completed tasks' deadlines too (set at the same time, cancelled at completion).
      await sleep(2000);
      await waitFor('nothing pending', async () => settled(await bus.stats()), 20_000, 100);
      assert.equal([...seen.get('task.expired')!.keys()].sort(), silent, 'the silent tasks, and only them, expired');
      assert.equal([...seen.get('task.deadline')!.keys()].sort(), silent, 'a completed task\'s deadline never fired');
      assert.equal([...seen.get('task.completed')!.keys()].sort(), answered);
      for (const [type, per] of seen) assert.equal([...per].filter(([, n]) => n !== 1), [], `${type} at most once per task`);
      for (const id of silent) {
        const t = (await bus.keys!.get('Planner', id))?.state as Task;
        assert.equal([t.step, t.results], ['expired', [null, null, null]], id);
      }
      for (const id of answered) assert.is(((await bus.keys!.get('Planner', id))?.state as Task).step, 'done', id);
      // A deadline arriving again (a repeat) for an expired or a completed task changes nothing.
      await bus.publishBatch([silent[0], answered[0]].map((id) => ({ type: 'task.deadline', subject: id, data: { task: id } })));
      await waitFor('nothing pending', async () => settled(await bus.stats()), 20_000, 100);
      assert.equal([count('task.expired'), seen.get('task.expired')!.get(silent[0])], [silent.length, 1]);
      for (const h of hosts) h.proc.kill('SIGTERM');
      assert.equal(await Promise.all(hosts.map((h) => h.exited)), [0, 0]);
    } finally {
      await recorder.close();
      await bus.close();
    }
  });
  s('a sign-off that never comes: the Releaser\'s waitFor times out at PIPELINE_SIGNOFF_MS and each approved task expires once', async () => {
    const env: Record<string, string> = { ...store.env, AGENTBUS_REDIS_PREFIX: `so${Date.now()}:`, PIPELINE_CLAIM_MS: '1500', PIPELINE_SIGNOFF_MS: '1500' };
    const bus = await createBus({ logger: pino({ level: 'warn' }) }, { ...process.env, ...env });
    const seen = new Map<string, Map<string, number>>(RECORDED.map((t) => [t, new Map()]));
    const count = (type: string) => seen.get(type)!.size;
    const recorder = await bus.subscribe({ group: 'test-recorder', types: RECORDED, concurrency: 16 }, (e: CloudEvent<{ task: string }>) => {
      const m = seen.get(e.type)!;
      m.set(e.data.task, (m.get(e.data.task) ?? 0) + 1);
    });
    try {
      const host = await startHost(AGENTS, env);
      const ids = ['so-0', 'so-1'];
      await bus.publishBatch(ids.map((id) => ({ type: 'task.created', subject: id, data: { goal: `ship ${id}` } })));
      await waitFor('every review requested', () => count('review.requested') === ids.length, 20_000, 50);
      await bus.publishBatch(ids.map((id) => ({ type: 'review.decided', subject: id, data: { approved: true, by: 'ada' } })));
      await waitFor('every sign-off timed out', () => count('task.expired') === ids.length, 20_000, 50);
      await waitFor('nothing pending', async () => settled(await bus.stats()), 20_000, 100);
      for (const [type, per] of seen) assert.equal([...per].filter(([, n]) => n !== 1), [], `${type} at most once per task`);
      assert.is(count('task.released'), 0);
      for (const id of ids) assert.equal((await bus.keys!.get('Releaser', id))?.state, { step: 'expired', by: null }, id);
      host.proc.kill('SIGTERM');
      assert.is(await host.exited, 0);
    } finally {
      await recorder.close();
      await bus.close();
    }
  });
  s.run();
}
