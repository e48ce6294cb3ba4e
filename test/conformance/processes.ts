import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as assert from 'uvu/assert';
import { assertSameIds, sleep, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';
import { assertSequences, publishKeyed } from './keyed.js';

interface Child {
  proc: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

export function startChild(config: object, env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/child.ts', JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const lines: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, lines, exited };
}

const ids = (c: Child, prefix: string) => c.lines.filter((l) => l.startsWith(prefix)).map((l) => l.split(' ')[1]);

export function processSuite(a: Target): void {
  const test = a.scenarios('several processes on one store');
  const busOptions = a.store.processOptions!;
  // Child processes a scenario started are killed when it ends, passed or failed: one left running
  // would keep this file's process alive until its time limit.
  const started: Child[] = [];
  const child = (config: object, env?: Record<string, string>) => {
    const c = startChild(config, env);
    started.push(c);
    return c;
  };
  test.after.each(() => {
    for (const c of started.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  });

  test('a publisher process and two consumer processes: each event handled once by the group', async () => {
    const type = uniq('proc');
    const group = uniq('g');
    const consumers = [0, 1].map(() => child({ bus: busOptions, role: 'consume', type, group, concurrency: 16 }));
    await waitFor('consumers ready', () => consumers.every((c) => c.lines.includes('ready')), 20_000);
    const publisher = child({ bus: busOptions, role: 'publish', type, count: 3000 });
    assert.is(await publisher.exited, 0);
    const published = ids(publisher, 'pub ');
    assert.is(published.length, 3000);
    const got = () => consumers.flatMap((c) => ids(c, 'got '));
    await waitFor('3000 handled', () => got().length >= 3000, 30_000);
    for (const c of consumers) c.proc.kill('SIGTERM');
    await Promise.all(consumers.map((c) => c.exited));
    assertSameIds(got(), published);
    assert.ok(consumers.every((c) => ids(c, 'got ').length > 0), 'both consumers took a share');
  });

  test('a consumer process killed with SIGKILL mid-delivery: its events reach another consumer', async () => {
    const bus = await a.make();
    const type = uniq('kill');
    const group = uniq('g');
    const doomed = child({ bus: busOptions, role: 'hang', type, group, concurrency: 5, claimIdleMs: 300 });
    await waitFor('child ready', () => doomed.lines.includes('ready'), 20_000);
    const published = await bus.publishBatch(Array.from({ length: 5 }, (_, i) => ({ type, data: i })));
    await waitFor('child took 5', () => ids(doomed, 'got ').length === 5, 10_000);
    doomed.proc.kill('SIGKILL');
    await doomed.exited;
    const got: Array<[string, number]> = [];
    const sub = await bus.subscribe({ group, types: [type], concurrency: 5, claimIdleMs: 300 }, (e, ctx) => void got.push([e.id, ctx.attempt]));
    await waitFor('5 reclaimed', () => got.length >= 5, 5000);
    assertSameIds(got.map(([id]) => id), published);
    assert.ok(got.every(([, n]) => n === 2));
    await sub.close();
    await bus.close();
  });

  test('keyed counter in 2 host processes, 50 keys x 200 events, the owner SIGKILLed 5 times mid-stream: every key applied each event once, in publish order', async () => {
    const bus = await a.make();
    const type = uniq('kkill');
    const group = uniq('g');
    const cfg = { bus: busOptions, role: 'count', type, group, concurrency: 16, claimIdleMs: 800 };
    let hosts = [child(cfg), child(cfg)];
    await waitFor('hosts ready', () => hosts.every((c) => c.lines.includes('ready')), 20_000);
    const keys = 50;
    const perKey = 200;
    const publishing = (async () => {
      for (let n = 0; n < perKey; n += 10) {
        const all: Array<{ type: string; data: { n: number }; subject: string }> = [];
        for (let m = n; m < n + 10; m++) for (let k = 0; k < keys; k++) all.push({ type, data: { n: m }, subject: `k${k}` });
        await bus.publishBatch(all);
        await sleep(150);
      }
    })();
    const handled = () => hosts.reduce((sum, c) => sum + c.lines.length, 0);
    const seen = new Map(hosts.map((c) => [c, c.lines.length]));
    for (let kill = 0; kill < 5; kill++) {
      const before = handled();
      // 100 more handled per kill, so the fifth kill still comes mid-stream: with 300 a fast pair of
      // hosts could finish the stream before it (seen once in CI: fewer than 300 events left).
      await waitFor(`handling before kill ${kill + 1}`, () => handled() > before + 100, 30_000);
      // The owner (the host handling now) at the worst moment: deliveries in flight, state accepted, not yet committed.
      const owner = hosts.reduce((x, y) => (x.lines.length - seen.get(x)! >= y.lines.length - seen.get(y)! ? x : y));
      owner.proc.kill('SIGKILL');
      await owner.exited;
      hosts = [...hosts.filter((c) => c !== owner), child(cfg)];
      for (const c of hosts) seen.set(c, c.lines.length);
    }
    await publishing;
    await waitFor('every key complete', async () => {
      for (let k = 0; k < keys; k++) if (((await bus.keys!.get(group, `k${k}`))?.state as { seq: number[] } | undefined)?.seq.length !== perKey) return false;
      return true;
    }, 60_000, 250);
    await assertSequences(bus, group, keys, perKey);
  });

  test('request/reply across processes: requests from this process answered by a responder in another', async () => {
    const bus = await a.make();
    const type = uniq('rpc');
    const responder = child({ bus: busOptions, role: 'respond', type, group: uniq('g') });
    await waitFor('responder ready', () => responder.lines.includes('ready'), 20_000);
    const replies = await Promise.all(Array.from({ length: 30 }, (_, n) => bus.request<{ n: number; pid: number }>(type, { n }, { timeoutMs: 20_000 })));
    assert.equal(replies.map((r) => r.n), Array.from({ length: 30 }, (_, n) => n * 2));
    assert.ok(replies.every((r) => r.pid === responder.proc.pid), 'answered by the other process');
  });

  test('keyed: a host killed right after its state write, before the acknowledgement: redelivered and not applied twice', async () => {
    const bus = await a.make();
    const type = uniq('kwrite');
    const group = uniq('g');
    const cfg = { bus: busOptions, role: 'count', type, group, concurrency: 4, claimIdleMs: 600 };
    await publishKeyed(bus, type, 5, 400); // commits are of at most 512 deliveries: several of them
    const doomed = child(cfg, { AGENTBUS_TEST_KILL_AFTER_STATE_WRITE: '2' });
    assert.is(await doomed.exited, null, 'killed by the hook');
    const survivor = child(cfg);
    await waitFor('ready', () => survivor.lines.includes('ready'), 20_000);
    await waitFor('every key complete', async () => {
      for (let k = 0; k < 5; k++) if (((await bus.keys!.get(group, `k${k}`))?.state as { seq: number[] } | undefined)?.seq.length !== 400) return false;
      return true;
    }, 30_000, 100);
    await assertSequences(bus, group, 5, 400);
  });

  test('keyed waitFor: SIGKILLed three times while its handler is parked in waitFor, at maxAttempts 2: each restart runs it on attempt 1 (a crash while waiting costs no attempt), and it completes once', async () => {
    const bus = await a.make();
    const type = uniq('approve');
    const group = uniq('g');
    const cfg = { bus: busOptions, role: 'approve', type, group, claimIdleMs: 800, waitMs: 60_000, maxAttempts: 2 };
    await bus.publish(type, {}, { subject: 'k1' });
    const attempts: string[] = [];
    for (let kill = 1; kill <= 3; kill++) {
      const host = child(cfg);
      await waitFor(`run ${kill} waiting`, () => host.lines.some((l) => l.startsWith('began k1 ')), 30_000);
      attempts.push(host.lines.find((l) => l.startsWith('began k1 '))!.split(' ')[3]);
      await sleep(500); // parked: its wait record stored, its attempt count held one down
      // The worst moment: the handler parked inside ctx.waitFor, its delivery leased and not committed.
      host.proc.kill('SIGKILL');
      await host.exited;
    }
    const last = child(cfg);
    await waitFor('run 4 waiting', () => last.lines.some((l) => l.startsWith('began k1 ')), 30_000);
    attempts.push(last.lines.find((l) => l.startsWith('began k1 '))!.split(' ')[3]);
    await bus.publish(`${type}.granted`, { via: 'after three kills' }, { subject: 'k1' });
    await waitFor('k1 done', () => last.lines.includes('done k1'), 20_000);
    assert.equal(attempts, ['1', '1', '1', '1'], 'every run after a kill while waiting is attempt 1');
    await waitFor('committed', async () => ((await bus.keys!.get(group, 'k1'))?.state as { step?: string } | undefined)?.step === 'approved', 10_000);
    assert.equal(await bus.deadLetters.list({ group }), []);
  });

  test('keyed waitFor: the host SIGKILLed while three handlers are parked in waitFor; after the restart each completes once, a grant published while it was down and one after it are taken, and the timeout keeps the first deadline', async () => {
    const bus = await a.make();
    const type = uniq('approve');
    const group = uniq('g');
    const waitMs = 7000;
    const cfg = { bus: busOptions, role: 'approve', type, group, claimIdleMs: 800, waitMs };
    for (const k of ['k1', 'k2', 'k3']) await bus.publish(type, {}, { subject: k });
    const first = child(cfg);
    const began = (c: Child, key: string) => c.lines.filter((l) => l.startsWith(`began ${key} `)).map((l) => Number(l.split(' ')[2]));
    await waitFor('three handlers waiting', () => ['k1', 'k2', 'k3'].every((k) => began(first, k).length === 1), 20_000);
    await sleep(500); // their wait records are stored by now
    // The kill hits while all three handlers are parked inside ctx.waitFor: their wait records
    // stored, no match yet, their deliveries leased to this host and not committed.
    first.proc.kill('SIGKILL');
    await first.exited;
    await bus.publish(`${type}.granted`, { via: 'while down' }, { subject: 'k1' });
    const second = child(cfg);
    await waitFor('k1 done after the restart', () => second.lines.includes('done k1'), 20_000);
    await waitFor('k2 waiting again', () => began(second, 'k2').length === 1, 20_000);
    await bus.publish(`${type}.granted`, { via: 'after restart' }, { subject: 'k2' });
    await waitFor('k2 done', () => second.lines.includes('done k2'), 20_000);
    await waitFor('k3 timed out', () => second.lines.includes('done k3'), waitMs + 10_000);
    const state = async (k: string) => (await bus.keys!.get(group, k))?.state as { step: string; by?: unknown; deadline?: number } | undefined;
    await waitFor('committed', async () => (await state('k3'))?.step === 'timed out', 10_000);
    assert.equal(await state('k1'), { step: 'approved', by: { via: 'while down' } });
    assert.equal(await state('k2'), { step: 'approved', by: { via: 'after restart' } });
    const deadline = (await state('k3'))!.deadline!;
    const firstBegan = began(first, 'k3')[0];
    assert.ok(deadline - firstBegan >= waitMs - 50 && deadline - firstBegan <= waitMs + 1000, `k3's deadline is the first run's: ${deadline - firstBegan} ms after it began`);
    assert.ok(began(second, 'k3')[0] + waitMs > deadline + 500, 'not the restarted run\'s now + timeout');
    for (const k of ['k1', 'k2', 'k3']) {
      assert.not.ok(first.lines.includes(`done ${k}`), `${k} did not complete before the kill`);
      assert.is(second.lines.filter((l) => l === `done ${k}`).length, 1, `${k} completed once`);
    }
    const done = (await bus.stats()).find((t) => t.type === `${type}.done`);
    assert.is(done?.length, 3, 'each completion event stored once');
  });

  test('keyed ctx.step: the host SIGKILLed after a step\'s result is recorded, its handler parked in waitFor after it: the restarted handler gets the recorded result without calling the step again, and the approval completes the ticket once', async () => {
    const bus = await a.make();
    const type = uniq('ticket');
    const group = uniq('g');
    const stepFile = join(mkdtempSync(join(tmpdir(), 'agentbus-step-')), 'calls');
    writeFileSync(stepFile, '');
    const cfg = { bus: busOptions, role: 'approve', type, group, claimIdleMs: 800, waitMs: 60_000, stepFile };
    await bus.publish(type, {}, { subject: 't1' });
    const stepped = (c: Child) => c.lines.find((l) => l.startsWith('stepped t1 '))?.slice('stepped t1 '.length);
    const first = child(cfg);
    await waitFor('stepped', () => stepped(first) !== undefined, 30_000);
    await sleep(500); // parked in waitFor after the step
    // The worst moment: the step's result recorded, the handler waiting, its delivery not committed.
    first.proc.kill('SIGKILL');
    await first.exited;
    const second = child(cfg);
    await waitFor('run 2 past its step', () => stepped(second) !== undefined, 30_000);
    const llm = { answer: 'for t1', pid: first.proc.pid };
    assert.equal(JSON.parse(stepped(second)!), llm, 'the restarted run got the first run\'s recorded result');
    await bus.publish(`${type}.granted`, { by: 'ops' }, { subject: 't1' });
    await waitFor('t1 done', () => second.lines.includes('done t1'), 20_000);
    assert.equal(readFileSync(stepFile, 'utf8').split('\n').filter(Boolean), [`t1 ${first.proc.pid}`], 'the step\'s function ran once in total');
    await waitFor('committed', async () => ((await bus.keys!.get(group, 't1'))?.state as { step?: string } | undefined)?.step === 'approved', 10_000);
    assert.equal((await bus.keys!.get(group, 't1'))!.state, { step: 'approved', by: { by: 'ops' }, llm });
    assert.not.ok(first.lines.includes('done t1'), 'not completed before the kill');
    assert.is(second.lines.filter((l) => l === 'done t1').length, 1, 'completed once');
    assert.is((await bus.stats()).find((t) => t.type === `${type}.done`)?.length, 1, 'its completion event stored once');
  });

  test('keyed durable ctx.request: the requesting host SIGKILLed while its request is out; a second host takes over, the replier answers once, and the handler completes once with that reply', async () => {
    const bus = await a.make();
    const type = uniq('plan');
    const group = uniq('g');
    let open = false;
    const calls: Array<{ key: string; id: string }> = [];
    await bus.subscribe({ group: uniq('tool'), types: [`${type}.tool`], concurrency: 4 }, async (e) => {
      calls.push({ key: (e.data as { key: string }).key, id: e.id });
      await waitFor('the replier let go', () => open, 60_000);
      return { answer: `for ${(e.data as { key: string }).key}`, call: calls.length };
    });
    const cfg = { bus: busOptions, role: 'ask', type, group, claimIdleMs: 800, waitMs: 60_000 };
    await bus.publish(type, {}, { subject: 't1' });
    const asking = (c: Child) => c.lines.filter((l) => l.startsWith('asking t1 '));
    const first = child(cfg);
    await waitFor('first run asking', () => asking(first).length === 1, 30_000);
    await waitFor('the replier has the request', () => calls.length === 1, 20_000);
    await sleep(300); // the handler parked for its reply
    // The worst moment: the request stored (its record too, the replier working on it), the reply not yet published.
    first.proc.kill('SIGKILL');
    await first.exited;
    const second = child(cfg);
    await waitFor('second run asking', () => asking(second).length === 1, 30_000);
    await sleep(300); // its request (the same id) is deduplicated: the replier is not asked again
    open = true;
    await waitFor('t1 done', () => second.lines.includes('done t1'), 20_000);
    const reply = { answer: 'for t1', call: 1 };
    assert.equal(second.lines.find((l) => l.startsWith('replied t1 ')), `replied t1 ${JSON.stringify(reply)}`);
    await waitFor('committed', async () => (await bus.keys!.get(group, 't1'))?.state !== undefined, 10_000);
    assert.equal((await bus.keys!.get(group, 't1'))!.state, { reply });
    await sleep(500);
    assert.is(calls.length, 1, 'the replier ran exactly once');
    assert.not.ok(first.lines.includes('done t1'), 'not completed before the kill');
    assert.is(second.lines.filter((l) => l === 'done t1').length, 1, 'completed once');
    assert.is((await bus.stats()).find((t) => t.type === `${type}.done`)?.length, 1, 'its completion event stored once');
    await waitFor('its records removed', async () => (await bus.keys!.waits(group, { key: 't1' })).length === 0, 10_000);
  });

  test.run();
}
