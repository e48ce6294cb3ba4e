import type { Logger } from 'pino';
import type { Bus, DeliveryContext, DeliveryOptions } from '../bus/contract.js';
import type { CloudEvent, EventInput, PublishOptions } from '../bus/event.js';
import type { KeyOf, KeyedRequestOptions, KeyedStateOptions, WaitOptions } from '../bus/keyed/contract.js';
import type { AnyStateMachine } from 'xstate';

/** Marks agent classes across copies of this package (an agent file may import another copy). */
export const AGENT_BRAND = Symbol.for('agentbus.BaseAgent');

/**
 * Per-agent options, as `static options` on the class. The delivery options are the subscribe
 * options of DeliveryOptions (documented, with their defaults, once there); two are the host's own
 * (their defaults in AGENT_OPTIONS, runtime/agent-spec.ts).
 * `concurrency` stays 1 by default, as for `bus.subscribe`: one handler at a time, in publish order.
 * A handler that waits seconds (an LLM call) then caps the agent at one event per wait; raise
 * `concurrency`, with `orderBy: 'subject'` where order matters per conversation (README, Agents).
 */
export type AgentOptions = DeliveryOptions & KeyedStateOptions & {
  /**
   * Consumers of the group this host runs for the agent.
   * @default 1
   */
  replicas?: number | undefined;
  /**
   * Consecutive failed deliveries (handler throws) that count as a crash of the agent: the circuit
   * opens, the agent stops fetching and the supervisor restarts it after its backoff. 0 turns the
   * breaker off.
   * @default 10
   */
  breakerFailures?: number | undefined;
};

/** What an agent gets in `onStart`, `onStop` and (extended) in each handler. */
export interface AgentContext {
  /** The agent's name, which is also its consumer group. */
  readonly agent: string;
  readonly logger: Logger;
  /** Aborted when this instance stops or crashes. */
  readonly signal: AbortSignal;
  /** The host's bus (stats, replay, dead letters). Publish through `publish` to get source and trace. */
  readonly bus: Bus;
  /**
   * True when this instance was made by a replay (`host.replay`, `agentbus replay --agent`): the
   * events are ones already handled, and `publish` (also `bus.publish`) is captured, not stored,
   * unless the replay was asked to publish. False in a host's normal run.
   */
  readonly replaying: boolean;
  /** Publishes with the agent as `source`. */
  publish<T>(type: string, data: T, options?: PublishOptions): Promise<string>;
  publishBatch(events: EventInput[]): Promise<string[]>;
  /** Like the global timers, but cleared when the instance stops; a throw (or rejection) in `fn` is a crash. */
  setInterval(fn: () => unknown, ms: number): void;
  setTimeout(fn: () => unknown, ms: number): void;
  /** Reports a crash: the supervisor restarts the agent (per its restart type and intensity). */
  crash(error: unknown): void;
  /** Ends the agent normally: `transient` and `temporary` agents stay stopped, `permanent` ones restart. */
  exit(): void;
}

/** Handed to every handler: the delivery (attempt, signal, deadLetter) and the agent's context. */
export interface HandlerContext extends AgentContext, Omit<DeliveryContext, 'signal'> {
  readonly event: CloudEvent;
  /** pino child bound to agent, group, event id and type. */
  readonly logger: Logger;
  /** Publishes with the agent as `source` and the incoming event's `traceparent`. */
  publish<T>(type: string, data: T, options?: PublishOptions): Promise<string>;
  /**
   * Publishes a request and resolves with its reply's data (the replying handler's return value),
   * or rejects with RequestFailedError when the handler's group dead-letters it, or with
   * RequestTimeoutError after `timeoutMs` (default 30 s). See bus.request. In a keyed agent it is
   * durable unless `durable: false`: published once however often the handler runs, its reply
   * recorded for the agent and kept across a crash, its deadline fixed at the first run (README,
   * Request/reply; a durable call, in order with waitFor and step). Elsewhere, and in a replay, it
   * waits in memory.
   */
  request<R = unknown>(type: string, data: unknown, options?: KeyedRequestOptions): Promise<R>;
  /**
   * A reminder: publishes `type` (to whoever subscribes, usually this agent) `in` a while or `at` a
   * time, durably (a delayed event); a keyed agent's carries the key as subject and is stored once
   * however often the handler is redelivered. With a `name` (per agent, per key for a keyed agent),
   * scheduling it again replaces the pending reminder of that name atomically: the old one never
   * fires. Resolves with the event's id once stored. A handler's schedules and cancels run in the order called.
   */
  schedule(type: string, data: unknown, options: { in?: number | string; at?: Date | number | string; name?: string }): Promise<string>;
  /**
   * Removes the pending reminder named `name` (this key's, for a keyed agent), whatever its type;
   * resolves whether one was pending. A keyed agent's cancel is done once however often the handler
   * is redelivered. During a replay it does nothing and resolves false.
   */
  cancelSchedule(name: string): Promise<boolean>;
  /**
   * Keyed agents only (elsewhere it rejects with INVALID_OPTION): waits durably for the first event
   * of `type` of this key (accepted by `match`), at most `timeout` (ms or a duration such as `10m`,
   * `1d`), then rejects with WaitTimeoutError; the key's other events wait behind the handler. After
   * a crash the handler runs again from its start and this call returns the event recorded for it,
   * or waits on to the original deadline (README, Waiting durably). `type` must be in
   * `static waitsFor` or `static subscriptions`.
   */
  waitFor<T = unknown>(type: string, options: WaitOptions<T>): Promise<CloudEvent<T>>;
  /**
   * Keyed agents only (elsewhere it rejects with INVALID_OPTION): a durable step. The first run
   * calls `fn` and records its result (JSON) in the store before returning it; a later run of the
   * handler for the same event (a restart, a takeover, a retry after a later failure) returns the
   * recorded result at the same step without calling `fn` (README, Durable steps). Steps and
   * waitFor calls must come in the same order on every run. In a replay `fn` runs, unrecorded.
   */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
}

/**
 * The context of a keyed agent's handler (`static key`): the handler context plus the key and its
 * state, loaded before the handler and committed with the acknowledgement (README, Keyed agents).
 */
export interface KeyedContext<S = unknown> extends HandlerContext {
  readonly key: string;
  /** Assign or mutate; what it holds when the handler resolves is committed. null removes the key's state. */
  state: S;
}

export type AgentHandler = (event: CloudEvent, ctx: HandlerContext) => unknown;

/**
 * Subclass to write an agent. Declare `static subscriptions` (exact types and prefix patterns
 * such as `device.*`) and handle events either per type, in a method named `on` + the type in
 * PascalCase (`device.validated` -> `onDeviceValidated`, `user.signed_up` -> `onUserSignedUp`), or
 * in a catch-all `handle(event, ctx)`. The type is the topic the event was stored under, and the
 * names in RESERVED_METHODS are never per-type handlers. Resolving is acknowledging; throwing is a
 * failed delivery (retried, then dead-lettered). Optional `onStart(ctx)` and `onStop(ctx)`. One instance is made
 * per start: a restart gets a fresh object.
 *
 * The class declares none of these members itself (see AgentHooks and AgentClass), so subclasses
 * need no `override` keyword under `noImplicitOverride`.
 */
export abstract class BaseAgent {
  static readonly [AGENT_BRAND] = true;
}

/** The instance methods the runtime calls, all optional. */
export interface AgentHooks {
  onStart?(ctx: AgentContext): unknown;
  onStop?(ctx: AgentContext): unknown;
  handle?(event: CloudEvent, ctx: HandlerContext): unknown;
}

/** An agent class as the host takes it. */
export type AgentClass = (new () => BaseAgent) & {
  /** Types and patterns the agent handles. None: the agent only runs onStart/onStop (a producer). */
  subscriptions?: readonly string[];
  options?: AgentOptions;
  /** Name and consumer group. Default: the class name. */
  agentName?: string;
  /**
   * Makes the agent keyed: one actor per key (`'subject'`, or a function of the event), its state
   * on `ctx.state`, one handler per key at a time across every host (README, Keyed agents).
   */
  key?: KeyOf | string;
  /**
   * Event types a keyed agent's handlers may `ctx.waitFor` without subscribing to them (exact
   * types). One arriving with no wait to take it goes to its `on<Type>` method if the agent has
   * one (never to `handle`), and is acknowledged otherwise.
   */
  waitsFor?: readonly string[];
  /** A keyed agent's state for a key with none stored. Default: null. */
  initialState?: (key: string) => unknown;
  /**
   * An XState v5 machine run per key instead of handler methods (needs `key`): each event is sent to
   * the key's actor as `{ type, data, event }`, its persisted snapshot is the key's state, and what
   * it emits (`emit({ type, data })`) is published.
   */
  machine?: AnyStateMachine;
  /**
   * Events published on a beat: `{ every: '5m' | ms, type, data? }` fires `type` at every multiple
   * of `every` (1 s to 365 days); `{ cron: '*\/5 * * * *', tz?, type, data? }` at each time the cron
   * expression names (5 fields, or 6 with seconds first; runtime/cron.ts). Once per tick across
   * all hosts, durably (README, Durable time).
   */
  schedules?: ReadonlyArray<{ every: number | string; type: string; data?: unknown } | { cron: string; tz?: string; type: string; data?: unknown }>;
};

export function isAgentClass(v: unknown): v is AgentClass {
  return typeof v === 'function' && (v as unknown as Record<symbol, unknown>)[AGENT_BRAND] === true && v.prototype !== undefined && !isAbstractBase(v);
}

function isAbstractBase(v: unknown): boolean {
  return Object.prototype.hasOwnProperty.call(v, AGENT_BRAND);
}

export function agentName(cls: AgentClass): string {
  return cls.agentName ?? cls.name;
}

/**
 * Method names the runtime calls itself, never as a per-type handler: the lifecycle hooks of today
 * (`onStart`, `onStop`, `handle`) and names kept for hooks likely to come (`onError`, `onCrash`,
 * `onExit`, `onRestart`, `onTimer`, `onDrain`), so adding one later changes no agent's routing.
 * The host refuses an agent subscribing to an exact type whose method name is one of these
 * (`start` -> `onStart`); such a type reached through a pattern goes to `handle`.
 */
export const RESERVED_METHODS: ReadonlySet<string> = new Set(['onStart', 'onStop', 'handle', 'onError', 'onCrash', 'onExit', 'onRestart', 'onTimer', 'onDrain']);

/** `device.validated` -> `onDeviceValidated`: the per-type handler method's name. */
export function methodName(type: string): string {
  return 'on' + type.split(/[._:-]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join('');
}

/**
 * The handler for one concrete type (the topic an event was stored under): its per-type method
 * unless that name is reserved (RESERVED_METHODS), else `handle`, else null. Bound to the instance.
 */
export function handlerFor(agent: BaseAgent, type: string): AgentHandler | null {
  const own = ownMethod(agent, type);
  if (own !== null) return own;
  const h = (agent as AgentHooks).handle;
  return typeof h === 'function' ? h.bind(agent) : null;
}

/** The agent's own per-type method for `type` (never `handle`, never a reserved name), bound, or null. */
export function ownMethod(agent: BaseAgent, type: string): AgentHandler | null {
  const name = methodName(type);
  const m = RESERVED_METHODS.has(name) ? undefined : (agent as unknown as Record<string, unknown>)[name];
  return typeof m === 'function' ? (m as AgentHandler).bind(agent) : null;
}
