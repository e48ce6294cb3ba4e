import { createActor, fromPromise, waitFor, type Actor } from 'xstate';
import type { Logger } from 'pino';
import { backoffDelay } from '../bus/backoff.js';
import { int, knownKeys, oneOf } from '../bus/validate.js';
import { resolveTable, SUPERVISOR_BACKOFF_OPTIONS } from '../bus/options.js';
import { invalid } from '../bus/errors.js';
import type { BackoffOptions } from '../bus/contract.js';
import { lifecycle, type LifecycleState } from './lifecycle.js';
import { errForLog } from '../bus/thrown.js';

/** Time source for restart delays and intensity windows; tests pass XState's SimulatedClock. */
export interface Clock {
  now(): number;
  setTimeout(fn: (...args: unknown[]) => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
};

/** OTP restart types: `permanent` always restarts, `transient` only after a crash, `temporary` never. */
export type RestartType = 'permanent' | 'transient' | 'temporary';
/** OTP strategies: restart the crashed child only, all children, or it and those started after it. */
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';

/** What the supervisor needs of a child: three effects; each start makes a fresh instance. */
export interface ChildSpec {
  name: string;
  restart: RestartType;
  start(): Promise<void>;
  /** Graceful stop: drain, then the agent's onStop. */
  stop(): Promise<void>;
  /** After a crash: stop fetching, drain, free what the instance held; no onStop. */
  teardown(): Promise<void>;
}

export interface SupervisorOptions {
  /** Default `one_for_one`. */
  strategy?: Strategy | undefined;
  /** Restarts of one child allowed inside `periodMs`; the next crash marks it failed. Default 5. */
  maxRestarts?: number | undefined;
  /** Default 60000 ms. */
  periodMs?: number | undefined;
  /**
   * Delay before a restart, growing with the restarts inside the period, with jitter; the keys and
   * ranges of a delivery's backoff (bus/options.ts SUPERVISOR_BACKOFF_OPTIONS). Default 200 ms
   * initial, 30000 ms max, factor 2.
   */
  backoff?: BackoffOptions | undefined;
  clock?: Clock | undefined;
  random?: (() => number) | undefined;
}

export interface Transition {
  agent: string;
  from: LifecycleState;
  to: LifecycleState;
  restarts: number;
  error: string | null;
  /** The error's stack, when it was an Error. */
  stack: string | null;
}

export interface ChildStatus {
  agent: string;
  state: LifecycleState;
  restarts: number;
  /** The last crash's (or failed stop's) error, as `<name>: <message>`. */
  lastError: string | null;
  /** Its stack: where it was thrown, then its causes' (at most 8192 characters); null when not an Error. */
  lastErrorStack: string | null;
  /** The last transitions, oldest first (at most HISTORY); a crash's carries its error and stack. */
  history: Array<{ from: LifecycleState; to: LifecycleState; at: string; error?: string; stack?: string }>;
}

/** Transitions kept per agent for status(). */
const HISTORY = 20;

type LifecycleActor = Actor<typeof lifecycle>;

interface Child {
  spec: ChildSpec;
  actor: LifecycleActor;
  state: LifecycleState;
  /** Clock times of this child's restarts inside the current period. */
  restartTimes: number[];
  history: ChildStatus['history'];
}

/**
 * Restarts crashed agents with OTP semantics. Each child's lifecycle is an XState actor; the
 * supervisor watches them and decides what a crash or an exit means. Nothing a child does can
 * throw into the supervisor: crashes and exits arrive as lifecycle states.
 */
export class Supervisor {
  private readonly children: Child[];
  private readonly strategy: Strategy;
  private readonly maxRestarts: number;
  private readonly periodMs: number;
  private readonly backoff: Required<BackoffOptions>;
  private readonly clock: Clock;
  private readonly random: () => number;
  private stopping = false;

  constructor(
    specs: ChildSpec[],
    options: SupervisorOptions,
    private readonly log: Logger,
    private readonly onTransition: (t: Transition) => void = () => {},
  ) {
    knownKeys('supervisor', options, ['strategy', 'maxRestarts', 'periodMs', 'backoff', 'clock', 'random']);
    this.strategy = oneOf('strategy', options.strategy, ['one_for_one', 'one_for_all', 'rest_for_one'] as const);
    this.maxRestarts = int('maxRestarts', options.maxRestarts, 5, 0, 1_000_000);
    this.periodMs = int('periodMs', options.periodMs, 60_000, 1, 86_400_000);
    this.backoff = resolveTable('supervisor backoff', SUPERVISOR_BACKOFF_OPTIONS, options.backoff ?? {}, 'backoff.');
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    const names = new Set<string>();
    for (const s of specs) {
      if (names.has(s.name)) throw invalid('INVALID_OPTION', `two agents are named ${JSON.stringify(s.name)}: agent names (and groups) must be unique in a host`);
      names.add(s.name);
    }
    this.children = specs.map((spec) => this.child(spec));
  }

  private child(spec: ChildSpec): Child {
    const machine = lifecycle.provide({
      actors: {
        start: fromPromise(() => spec.start()),
        stop: fromPromise(() => spec.stop()),
        teardown: fromPromise(() => spec.teardown()),
      },
    });
    const actor = createActor(machine, { input: { agent: spec.name }, clock: this.clock });
    const c: Child = { spec, actor, state: 'idle', restartTimes: [], history: [] };
    actor.subscribe({
      next: (snap) => {
        const to = snap.value as LifecycleState;
        if (to === c.state) return;
        const from = c.state;
        c.state = to;
        const withError = to === 'crashing' || to === 'stopped';
        const error = withError ? snap.context.lastError : null;
        const stack = withError && error ? snap.context.lastStack : null;
        const t: Transition = { agent: spec.name, from, to, restarts: snap.context.restarts, error, stack };
        const level = to === 'failed' || to === 'crashing' ? 'error' : 'info';
        c.history.push({ from, to, at: new Date(this.clock.now()).toISOString(), ...(error ? { error } : {}), ...(stack ? { stack } : {}) });
        if (c.history.length > HISTORY) c.history.shift();
        this.log[level]({ agent: spec.name, from, to, restarts: t.restarts, ...(error ? { error } : {}), ...(stack ? { stack } : {}) }, `agent ${spec.name}: ${from} -> ${to}`);
        this.onTransition(t);
        if (to === 'crashed') this.onCrash(c);
        else if (to === 'stopped' && snap.context.exit === 'normal') this.onExit(c);
      },
      // The machine handles every effect's error, so this is a bug in the runtime; say so, never rethrow.
      error: (err) => this.log.error({ agent: spec.name, err: errForLog(err) }, 'lifecycle actor errored'),
    });
    actor.start();
    return c;
  }

  /** Starts the children in order; each has left `starting` (running, or crashed and handled) before the next. */
  async start(): Promise<void> {
    for (const c of this.children) {
      c.actor.send({ type: 'START' });
      await waitFor(c.actor, (s) => !s.matches('starting'));
    }
  }

  /** Stops the children in reverse order, each drained before the next. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const c of [...this.children].reverse()) await this.stopChild(c);
  }

  crash(name: string, error: unknown): void {
    this.find(name)?.actor.send({ type: 'CRASH', error });
  }

  exit(name: string): void {
    this.find(name)?.actor.send({ type: 'EXIT' });
  }

  status(): ChildStatus[] {
    return this.children.map((c) => {
      const s = c.actor.getSnapshot();
      return { agent: c.spec.name, state: c.state, restarts: s.context.restarts, lastError: s.context.lastError, lastErrorStack: s.context.lastStack, history: [...c.history] };
    });
  }

  private find(name: string): Child | undefined {
    return this.children.find((c) => c.spec.name === name);
  }

  private async stopChild(c: Child): Promise<void> {
    c.actor.send({ type: 'STOP' });
    await waitFor(c.actor, (s) => s.matches('stopped') || s.matches('failed') || s.matches('crashed') || s.matches('idle'));
    if (c.state === 'crashed') c.actor.send({ type: 'STOP' });
  }

  private onExit(c: Child): void {
    if (this.stopping || c.spec.restart !== 'permanent') return;
    this.restart(c);
  }

  private onCrash(c: Child): void {
    if (this.stopping) return void c.actor.send({ type: 'STOP' });
    if (c.spec.restart === 'temporary') return void c.actor.send({ type: 'STOP' });
    this.restart(c);
  }

  private restart(c: Child): void {
    const now = this.clock.now();
    c.restartTimes = c.restartTimes.filter((t) => now - t < this.periodMs);
    if (c.restartTimes.length >= this.maxRestarts) {
      this.log.error({ agent: c.spec.name, restarts: c.restartTimes.length, periodMs: this.periodMs }, `agent ${c.spec.name}: more than ${this.maxRestarts} restarts in ${this.periodMs} ms, giving up`);
      c.actor.send({ type: 'GIVE_UP' });
      return;
    }
    c.restartTimes.push(now);
    const delay = backoffDelay(c.restartTimes.length, this.backoff, this.random);
    if (this.strategy === 'one_for_one') return void c.actor.send({ type: 'RESTART', delay });
    const i = this.children.indexOf(c);
    const siblings = this.children.filter((s, j) => s !== c && (this.strategy === 'one_for_all' || j > i) && s.state !== 'failed');
    void (async () => {
      // OTP order: the others stop (last started first), then all start again together after the delay.
      for (const s of [...siblings].reverse()) await this.stopChild(s);
      if (this.stopping) return;
      // A temporary sibling is stopped with the group but not started again (OTP does the same).
      for (const x of [c, ...siblings.filter((s) => s.spec.restart !== 'temporary')]) {
        if (x.state === 'stopped' || x.state === 'crashed') x.actor.send({ type: 'RESTART', delay });
      }
    })().catch((err) => this.log.error({ agent: c.spec.name, err: errForLog(err) }, 'group restart failed'));
  }
}
