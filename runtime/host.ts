import { AsyncLocalStorage } from 'node:async_hooks';
import { hostname } from 'node:os';
import { EventEmitter } from 'eventemitter3';
import type { Logger } from 'pino';
import type { Bus, ReplayOptions, ReplayResult } from '../bus/contract.js';
import { describe, errForLog } from '../bus/thrown.js';
import { invalid } from '../bus/errors.js';
import { knownKeys } from '../bus/validate.js';
import { defaultLogger } from '../bus/logger.js';
import { resolveAgents, type AgentEntry, type ResolvedAgent } from './agent-spec.js';
import { ReplayCapture, type ReplayPublishing } from './capture.js';
import { AgentInstance } from './instance.js';
import { HostMetrics } from './metrics.js';
import { loadTracing, type Tracing } from './tracing.js';
import { Supervisor, type ChildStatus, type SupervisorOptions, type Transition } from './supervisor.js';

export interface AgentHostOptions {
  bus: Bus;
  /** Agent classes (or `{ agent, restart, options, name }`), started in this order, stopped in reverse. */
  agents: AgentEntry[];
  /** Strategy, restart intensity and backoff; see SupervisorOptions. */
  supervisor?: SupervisorOptions | undefined;
  /** Names this host's consumers `<hostId>/<agent>/<n>`. Default `AGENTBUS_HOST_ID`, else `<hostname>-<pid>`. */
  hostId?: string | undefined;
  /** Default: pino at `LOG_LEVEL` (default `info`). */
  logger?: Logger | undefined;
  /**
   * Turn errors escaping the agents' own callbacks (`uncaughtException`, `unhandledRejection`) into
   * crashes of the agent whose code raised them, instead of letting Node end the process. Installs
   * process listeners while the host runs. Default true.
   */
  catchUncaught?: boolean | undefined;
  /**
   * OpenTelemetry spans (README, Tracing) when the application has `@opentelemetry/api`: a producer
   * span per event an agent publishes, a consumer span per delivery. Without the package nothing is
   * imported and nothing costs. Default true, unless `AGENTBUS_TRACING` is `off`.
   */
  tracing?: boolean | undefined;
}

/** What host.replay() did: the bus' replay result, plus what the agent published meanwhile. */
export interface AgentReplayResult extends ReplayResult {
  published: ReplayPublishing;
}

export interface HostStatus {
  hostId: string;
  /** Every agent running (or ended by design) and none failed. */
  ready: boolean;
  agents: ChildStatus[];
}

interface HostEvents {
  transition: [Transition];
  /** An agent went past its restart intensity. */
  failed: [string];
}

/**
 * Longest hostId. A consumer is named `<hostId>/<agent>/<n>` and the bus takes consumer names of
 * up to 1000 characters (neither store has a lower limit: Redis took a 20 MB consumer name);
 * with agent names of up to 200 characters and n up to 1000 that leaves 794. 512 holds any
 * host name (253 at most) with its pid and keeps every consumer name within the bus' limit.
 */
export const MAX_HOST_ID = 512;

/** A non-empty string of at most MAX_HOST_ID characters; any character works in both stores. */
function checkHostId(v: unknown): string {
  if (typeof v !== 'string' || v === '') throw invalid('INVALID_OPTION', `invalid hostId ${JSON.stringify(v)} (hostId, AGENTBUS_HOST_ID): expected a non-empty string`);
  if (v.length > MAX_HOST_ID) {
    throw invalid('INVALID_OPTION', `invalid hostId (hostId, AGENTBUS_HOST_ID) of ${v.length} characters: at most ${MAX_HOST_ID} (it names consumers <hostId>/<agent>/<n>); starts ${JSON.stringify(v.slice(0, 40))}`);
  }
  return v;
}

/** How long a readiness check waits for the store. */
const PING_TIMEOUT_MS = 2000;

/**
 * Runs agents on a bus: one supervised lifecycle per agent (group = agent name), routing each
 * event to the agent's per-type method or `handle`, with metrics and health. The host owns
 * neither the bus nor the process: `stop()` stops the agents and leaves closing the bus to whoever
 * made it (the CLI closes it).
 */
export class AgentHost extends EventEmitter<HostEvents> {
  readonly hostId: string;
  readonly bus: Bus;
  readonly metrics: HostMetrics;
  private readonly log: Logger;
  private readonly agents: ResolvedAgent[];
  private readonly supervisor: Supervisor;
  private readonly current = new Map<string, AgentInstance>();
  private readonly als = new AsyncLocalStorage<AgentInstance>();
  private readonly catchUncaught: boolean;
  private started = false;
  private readonly tracingOn: boolean;
  /** Set by start() when tracing is on and the API loads. */
  private tracing: Tracing | null = null;
  private stopped: Promise<void> | null = null;
  /** Ends the metrics' watch of the bus (Bus.observe), from start() to stop(). */
  private unobserve: (() => void) | null = null;

  constructor(options: AgentHostOptions) {
    super();
    if (options === null || typeof options !== 'object') throw invalid('INVALID_OPTION', `AgentHost options must be an object, got ${String(options)}`);
    knownKeys('host', options, ['bus', 'agents', 'supervisor', 'hostId', 'logger', 'catchUncaught', 'tracing']);
    if (!options.bus || typeof options.bus.subscribe !== 'function') throw invalid('INVALID_OPTION', 'AgentHost needs a bus (from createBus)');
    if (!Array.isArray(options.agents)) throw invalid('INVALID_OPTION', `AgentHost agents must be an array, got ${typeof options.agents}`);
    this.bus = options.bus;
    this.hostId = checkHostId(options.hostId ?? (process.env.AGENTBUS_HOST_ID || `${hostname()}-${process.pid}`));
    this.log = options.logger ?? defaultLogger();
    this.catchUncaught = options.catchUncaught ?? true;
    if (options.tracing !== undefined && typeof options.tracing !== 'boolean') throw invalid('INVALID_OPTION', `invalid tracing ${JSON.stringify(options.tracing)}: expected true or false`);
    this.tracingOn = options.tracing ?? process.env.AGENTBUS_TRACING !== 'off';
    this.agents = resolveAgents(options.agents);
    const health = this.bus.health?.bind(this.bus);
    this.metrics = new HostMetrics(() => this.bus.stats(), new Set(this.agents.map((a) => a.name)), health && ((topics) => health({ topics })), () => this.bus.spool?.stats() ?? null);
    const specs = this.agents.map((a) => ({
      name: a.name,
      restart: a.restart,
      start: () => this.startInstance(a),
      stop: () => this.instance(a).stop(),
      teardown: () => this.instance(a).teardown(),
    }));
    this.supervisor = new Supervisor(specs, options.supervisor ?? {}, this.log, (t) => {
      this.metrics.transition(t.agent, t.to);
      this.emit('transition', t);
      if (t.to === 'failed') this.emit('failed', t.agent);
    });
  }

  /**
   * Hands stored events to one agent's handlers on a fresh instance of it (onStart, handlers,
   * onStop), without a subscription: no group moves, nothing is acknowledged or dead-lettered.
   * Types default to the agent's subscriptions. The instance sees `ctx.replaying` true, and what it
   * publishes (ctx.publish, ctx.publishBatch, ctx.bus.publish) is captured, not stored, unless
   * `publish: true`: the result's `published` counts it and lists the first 100.
   */
  replay(agent: string, options: Partial<ReplayOptions> & { publish?: boolean } = {}): Promise<AgentReplayResult> {
    const a = this.agents.find((x) => x.name === agent);
    if (!a) throw invalid('INVALID_OPTION', `replay: no agent ${JSON.stringify(agent)} in this host (agents: ${this.agents.map((x) => x.name).join(', ')})`);
    if (options === null || typeof options !== 'object') throw invalid('INVALID_OPTION', `replay options must be an object, got ${String(options)}`);
    const { publish = false, ...rest } = options;
    if (typeof publish !== 'boolean') throw invalid('INVALID_OPTION', `invalid replay publish ${JSON.stringify(publish)}: expected true or false`);
    const types = rest.types ?? [...(a.cls.subscriptions ?? [])];
    const capture = new ReplayCapture(publish);
    return this.newInstance(a, capture).replay({ ...rest, types }).then((result) => ({ ...result, published: capture.result }));
  }

  private startInstance(a: ResolvedAgent): Promise<void> {
    const inst = this.newInstance(a);
    this.current.set(a.name, inst);
    return inst.start();
  }

  private newInstance(a: ResolvedAgent, capture: ReplayCapture | null = null): AgentInstance {
    return new AgentInstance(a, {
      bus: this.bus,
      hostId: this.hostId,
      logger: this.log,
      als: this.als,
      crash: (agent, err) => this.supervisor.crash(agent, err),
      exit: (agent) => this.supervisor.exit(agent),
      metrics: this.metrics,
      tracing: this.tracing,
    }, capture);
  }

  private instance(a: ResolvedAgent): AgentInstance {
    return this.current.get(a.name)!;
  }

  /** Starts every agent in order. Resolves when each has started (or crashed and been handed to the supervisor). */
  async start(): Promise<void> {
    if (this.started) throw invalid('INVALID_OPTION', 'AgentHost.start() called twice');
    this.started = true;
    if (this.catchUncaught) {
      process.on('uncaughtException', this.uncaught);
      process.on('unhandledRejection', this.uncaught);
    }
    this.unobserve = this.bus.observe?.(this.metrics.busObserver) ?? null;
    if (this.tracingOn) this.tracing = await loadTracing();
    this.log.info({ hostId: this.hostId, agents: this.agents.map((a) => a.name), tracing: this.tracing !== null }, 'host starting');
    await this.supervisor.start();
  }

  /** Stops fetching, lets handlers in flight finish (each agent's drainTimeoutMs) and acknowledges them, runs onStop. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await this.supervisor.stop();
      this.unobserve?.();
      if (this.catchUncaught) {
        process.off('uncaughtException', this.uncaught);
        process.off('unhandledRejection', this.uncaught);
      }
      this.log.info({ hostId: this.hostId }, 'host stopped');
    })();
    return this.stopped;
  }

  status(): HostStatus {
    const agents = this.supervisor.status();
    const byName = new Map(this.agents.map((a) => [a.name, a]));
    const ready = agents.every((s) => s.state === 'running' || (s.state === 'stopped' && byName.get(s.agent)!.restart !== 'permanent' && this.stopped === null));
    return { hostId: this.hostId, ready: ready && this.started && this.stopped === null, agents };
  }

  /**
   * Readiness as `/readyz` serves it: the store answers within 2 s, accepts writes (bus.health(),
   * where the bus has it: not after an OOM, READONLY, disk-full or eviction-policy refusal until it
   * takes writes again), and status().ready.
   */
  async ready(): Promise<{ ready: boolean; reason?: string }> {
    const s = this.status();
    const bad = s.agents.filter((a) => a.state !== 'running');
    try {
      await withTimeout(this.bus.ping(), PING_TIMEOUT_MS);
    } catch (err) {
      return { ready: false, reason: `store unreachable: ${describe(err)}` };
    }
    if (this.bus.health) {
      // A health read that fails or is slow says nothing new: ping already answered.
      const h = await withTimeout(this.bus.health(), PING_TIMEOUT_MS).catch(() => null);
      if (h?.refused) return { ready: false, reason: `store refuses writes: ${h.refused}` };
    }
    return s.ready ? { ready: true } : { ready: false, reason: bad.map((a) => `${a.agent} ${a.state}`).join(', ') || 'not started' };
  }

  /** An error that escaped a callback: a crash of the agent whose code it came from, or logged if nobody's. */
  private readonly uncaught = (err: unknown): void => {
    const inst = this.als.getStore();
    if (inst !== undefined && this.current.get(inst.agent) === inst) {
      inst.crash(err);
      return;
    }
    this.log.error({ err: errForLog(err), agent: inst?.agent }, inst ? 'uncaught error from a stopped agent instance' : 'uncaught error outside any agent');
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}
