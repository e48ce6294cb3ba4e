// The supervisor and the lifecycle machine with plain children (no bus), time driven by XState's
// SimulatedClock: no test sleeps for a restart delay.
import { pino } from 'pino';
import { SimulatedClock } from 'xstate';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Supervisor, type ChildSpec, type RestartType, type SupervisorOptions, type Transition } from '../runtime/supervisor.js';
import { waitFor } from './helpers/index.js';

const silent = pino({ level: 'silent' });

interface Probe extends ChildSpec {
  starts: number;
  stops: number;
  teardowns: number;
  failStart: boolean;
}

function child(name: string, restart: RestartType = 'permanent'): Probe {
  const p: Probe = {
    name,
    restart,
    starts: 0,
    stops: 0,
    teardowns: 0,
    failStart: false,
    start: async () => {
      p.starts++;
      if (p.failStart) throw new Error(`${name} cannot start`);
    },
    stop: async () => void p.stops++,
    teardown: async () => void p.teardowns++,
  };
  return p;
}

function setup(children: Probe[], options: SupervisorOptions = {}) {
  const clock = new SimulatedClock();
  const transitions: Transition[] = [];
  // random() = 1 makes every delay its upper bound: initial * factor^(n-1).
  const sup = new Supervisor(children, { backoff: { initialMs: 100, maxMs: 10_000 }, ...options, clock, random: () => 1 }, silent, (t) => transitions.push(t));
  const state = (name: string) => sup.status().find((s) => s.agent === name)!.state;
  const until = (name: string, s: string) => waitFor(`${name} ${s} (is ${state(name)})`, () => state(name) === s, 2000, 1);
  return { sup, clock, transitions, state, until };
}

const s = suite('supervisor');

s('one_for_one restarts only the crashed child, after its backoff', async () => {
  const [a, b, c] = [child('a'), child('b'), child('c')];
  const { sup, clock, state, until } = setup([a, b, c]);
  await sup.start();
  assert.equal([state('a'), state('b'), state('c')], ['running', 'running', 'running']);
  sup.crash('b', new Error('boom'));
  await until('b', 'restarting');
  assert.is(b.teardowns, 1, 'the crashed instance was torn down');
  clock.increment(99);
  assert.is(state('b'), 'restarting', 'not before the delay');
  clock.increment(1);
  await until('b', 'running');
  assert.equal([a.starts, b.starts, c.starts], [1, 2, 1]);
  assert.equal([a.stops, c.stops], [0, 0]);
  const b2 = sup.status().find((x) => x.agent === 'b')!;
  assert.is(b2.lastError, 'Error: boom');
  assert.equal(b2.history.map((h) => h.to), ['starting', 'running', 'crashing', 'crashed', 'restarting', 'starting', 'running']);
  assert.is(b2.history[2].error, 'Error: boom');
});

s('one_for_all stops the others (last first) and restarts all', async () => {
  const [a, b, c] = [child('a'), child('b'), child('c')];
  const { sup, clock, transitions, until } = setup([a, b, c], { strategy: 'one_for_all' });
  await sup.start();
  sup.crash('b', new Error('boom'));
  await until('a', 'restarting');
  await until('c', 'restarting');
  assert.equal([a.stops, b.stops, c.stops], [1, 0, 1], 'siblings stopped gracefully; the crashed one was torn down');
  const stopOrder = transitions.filter((t) => t.to === 'stopping').map((t) => t.agent);
  assert.equal(stopOrder, ['c', 'a'], 'stopped in reverse start order');
  clock.increment(100);
  for (const n of ['a', 'b', 'c']) await until(n, 'running');
  assert.equal([a.starts, b.starts, c.starts], [2, 2, 2]);
});

s('rest_for_one restarts the crashed child and those started after it', async () => {
  const [a, b, c] = [child('a'), child('b'), child('c')];
  const { sup, clock, state, until } = setup([a, b, c], { strategy: 'rest_for_one' });
  await sup.start();
  sup.crash('b', new Error('boom'));
  await until('c', 'restarting');
  assert.is(state('a'), 'running');
  clock.increment(100);
  await until('b', 'running');
  await until('c', 'running');
  assert.equal([a.starts, b.starts, c.starts], [1, 2, 2]);
  assert.equal([a.stops, c.stops], [0, 1]);
});

s('restart types: permanent restarts after a normal exit, transient and temporary do not', async () => {
  const [p, t, x] = [child('p', 'permanent'), child('t', 'transient'), child('x', 'temporary')];
  const { sup, clock, state, until } = setup([p, t, x]);
  await sup.start();
  for (const n of ['p', 't', 'x']) sup.exit(n);
  await until('t', 'stopped');
  await until('x', 'stopped');
  await until('p', 'restarting');
  clock.increment(100);
  await until('p', 'running');
  assert.equal([p.starts, t.starts, x.starts], [2, 1, 1]);
  assert.equal([p.stops, t.stops, x.stops], [1, 1, 1], 'an exit runs the graceful stop');
  assert.is(state('t'), 'stopped');
});

s('restart types: transient restarts after a crash, temporary stays stopped', async () => {
  const [t, x] = [child('t', 'transient'), child('x', 'temporary')];
  const { sup, clock, state, until } = setup([t, x]);
  await sup.start();
  sup.crash('t', new Error('t broke'));
  sup.crash('x', new Error('x broke'));
  await until('x', 'stopped');
  await until('t', 'restarting');
  clock.increment(100);
  await until('t', 'running');
  assert.equal([t.starts, x.starts], [2, 1]);
  assert.is(state('x'), 'stopped');
  assert.is(sup.status().find((s) => s.agent === 'x')!.lastError, 'Error: x broke');
});

s('a child whose onStart throws is restarted; delays grow with each restart in the period', async () => {
  const a = child('a');
  a.failStart = true;
  const { sup, clock, transitions, state, until } = setup([a], { maxRestarts: 10 });
  await sup.start();
  const restarts = () => transitions.filter((t) => t.to === 'restarting').length;
  for (const [i, delay] of [100, 200, 400, 800].entries()) {
    await waitFor(`restart ${i + 1}`, () => state('a') === 'restarting' && restarts() === i + 1, 2000, 1);
    clock.increment(delay - 1);
    assert.is(state('a'), 'restarting', `still waiting ${delay - 1} of ${delay} ms`);
    const before = a.starts;
    clock.increment(1);
    await waitFor(`start after ${delay} ms`, () => a.starts === before + 1, 2000, 1);
  }
  await waitFor('restart 5', () => state('a') === 'restarting' && restarts() === 5, 2000, 1);
  a.failStart = false;
  clock.increment(1600);
  await until('a', 'running');
  assert.is(a.teardowns, 5, 'each failed start was torn down');
});

s('past the intensity the child is failed while the others keep working', async () => {
  const [bad, good] = [child('bad'), child('good')];
  const { sup, clock, state, until } = setup([bad, good], { maxRestarts: 2, periodMs: 10_000 });
  await sup.start();
  for (let i = 0; i < 2; i++) {
    sup.crash('bad', new Error(`crash ${i}`));
    await until('bad', 'restarting');
    clock.increment(1000);
    await until('bad', 'running');
  }
  sup.crash('bad', new Error('crash 3'));
  await until('bad', 'failed');
  assert.is(bad.starts, 3);
  assert.is(state('good'), 'running');
  // The good child is supervised as before: it crashes and comes back.
  sup.crash('good', new Error('once'));
  await until('good', 'restarting');
  clock.increment(100);
  await until('good', 'running');
  // A failed child stays failed, even at stop.
  await sup.stop();
  assert.is(state('bad'), 'failed');
  assert.is(state('good'), 'stopped');
});

s('the intensity window slides: crashes spread over time never exhaust it', async () => {
  const a = child('a');
  const { sup, clock, until } = setup([a], { maxRestarts: 2, periodMs: 1000 });
  await sup.start();
  for (let i = 0; i < 6; i++) {
    sup.crash('a', new Error(`crash ${i}`));
    await until('a', 'restarting');
    clock.increment(1000); // past the delay and past the period: the earlier restarts no longer count
    await until('a', 'running');
  }
  assert.is(a.starts, 7);
});

s('stop() stops children in reverse order and cancels a pending restart', async () => {
  const [a, b] = [child('a'), child('b')];
  const { sup, transitions, state, until } = setup([a, b]);
  await sup.start();
  sup.crash('a', new Error('boom'));
  await until('a', 'restarting');
  await sup.stop();
  assert.is(state('a'), 'stopped');
  assert.is(state('b'), 'stopped');
  assert.is(a.starts, 1, 'the pending restart did not happen');
  assert.equal(transitions.filter((t) => t.to === 'stopping').map((t) => t.agent), ['b']);
});

s('duplicate child names are refused', () => {
  assert.throws(() => new Supervisor([child('a'), child('a')], {}, silent), /two agents are named "a"/);
});

s('bad supervisor options name the option and the accepted values', () => {
  assert.throws(() => new Supervisor([], { strategy: 'one_for_some' as never }, silent), /strategy "one_for_some": expected one of one_for_one, one_for_all, rest_for_one/);
  assert.throws(() => new Supervisor([], { maxRestarts: -1 }, silent), /maxRestarts -1/);
});

s('supervisor backoff is checked by the one backoff table, factor included, with its own 200 ms initial delay', () => {
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return `${(err as { code?: string }).code}: ${(err as Error).message}`;
    }
    return 'accepted';
  };
  for (const factor of [0, 0.5, 101, Number.NaN, '2']) {
    const got = code(() => new Supervisor([], { backoff: { factor: factor as number } }, silent));
    assert.match(got, /^INVALID_OPTION: .*backoff\.factor/, `factor ${String(factor)}: ${got}`);
  }
  assert.match(code(() => new Supervisor([], { backoff: { initialMs: -1 } }, silent)), /^INVALID_OPTION: .*backoff\.initialMs -1/);
  assert.match(code(() => new Supervisor([], { backoff: { jitter: 1 } as never }, silent)), /^INVALID_OPTION: .*jitter/);
  assert.is(code(() => new Supervisor([], { backoff: { factor: 1.5, initialMs: 0, maxMs: 0 } }, silent)), 'accepted');
});

s('supervisor backoff defaults to a 200 ms initial delay (the restart backoff, not the delivery one)', async () => {
  const clock = new SimulatedClock();
  const a = child('a');
  const sup = new Supervisor([a], { clock, random: () => 1 }, silent);
  const state = () => sup.status()[0]!.state;
  await sup.start();
  sup.crash('a', new Error('boom'));
  await waitFor(`restarting (is ${state()})`, () => state() === 'restarting', 2000, 1);
  clock.increment(199);
  assert.is(state(), 'restarting', 'restarted before 200 ms');
  clock.increment(1);
  await waitFor(`running after 200 ms (is ${state()})`, () => state() === 'running', 2000, 1);
  assert.is(a.starts, 2);
});

s.run();
