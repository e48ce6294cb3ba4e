/**
 * Keyed subscriptions (keyed agents): the options and the handler context. With `key` set, a
 * subscription becomes one actor per key: a key's events run one at a time, in publish order per
 * topic, across every consumer of the group; each key has a state, loaded before its handler and
 * committed with the delivery's acknowledgement (README, Keyed agents; the store side in bus/state.ts).
 */
import type { DeliveryContext } from '../contract-delivery.js';
import type { CloudEvent, PublishOptions } from '../event.js';

/** Which key an event belongs to: its `subject`, or what a function of the event returns (a non-empty string). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any: a key function may type the event's data as it expects it
export type KeyOf = 'subject' | ((event: CloudEvent<any>) => string);

/** The state options of a keyed subscription (and of a keyed agent's `static options`). Each `@default` is the one in KEYED_OPTIONS. */
export interface KeyedStateOptions {
  /**
   * Keys whose state stays in memory; past it the least recently used (and idle) are evicted, down
   * to 15/16 of it in one pass, and loaded again from the store on their next event (passivation).
   * @default 10000
   */
  maxActiveKeys?: number | undefined;
  /**
   * Largest state of one key, as JSON; a handler leaving a larger one fails without retry (dead
   * letter `state_too_large`) and the key keeps its previous state. Also the largest `ctx.step`
   * result, as JSON (a larger one rejects with PAYLOAD_TOO_LARGE and is not recorded).
   * @default 256 KiB (262144)
   */
  maxStateBytes?: number | undefined;
  /**
   * A key's state is removed this long after its last change; 0 keeps it until removed.
   * @default 0
   */
  stateTtlMs?: number | undefined;
}

export interface KeyedOptions extends KeyedStateOptions {
  /**
   * Makes the subscription keyed (see this file's header). Events without a key (no subject, or the
   * function returns no non-empty string) become dead letters `no_key`.
   * @default none (not keyed)
   */
  key?: KeyOf | undefined;
  /**
   * The state of a key that has none stored (JSON-serialisable).
   * @default () => null
   */
  initialState?: ((key: string) => unknown) | undefined;
  /**
   * Exact types the handlers may `ctx.waitFor` besides the subscription's types: the group reads
   * them too. One that no wait takes is delivered to the handler as any event of its key.
   * @default []
   */
  waitsFor?: string[] | undefined;
}

/** The context of a keyed handler: the delivery's, plus the key and its state (assign or mutate it). */
export interface KeyedDeliveryContext<S = unknown> extends DeliveryContext {
  readonly key: string;
  /** Loaded before the handler; what it holds when the handler resolves is committed. null/undefined removes it. */
  state: S;
  /**
   * Waits durably for the first event of `type` of this key (accepted by `options.match`) that
   * arrives while this handler runs, keeping the key busy; rejects with WaitTimeoutError at the
   * deadline (fixed at the first run: a redelivery keeps it). Survives a crash: the handler runs again
   * from its start, and this call (by its order in the run) returns the event recorded for it, or
   * waits on (README, Waiting durably). `type` must be among the subscription's types or `waitsFor`.
   */
  waitFor<T = unknown>(type: string, options: WaitOptions<T>): Promise<CloudEvent<T>>;
  /**
   * A durable step (README, Durable steps): the first run calls `fn` and records what it resolves
   * (JSON data: strings, finite numbers, booleans, null, arrays, plain objects; undefined; at most
   * maxStateBytes as JSON; anything else is refused, not changed) in the store before returning it;
   * a later run of the handler for the same delivery (a crash, a stop, a lost lease, a retry after a
   * later failure, on any host) returns the recorded result at the same step without calling `fn`.
   * Every run gets the result as recorded (its JSON round trip). `fn` that throws
   * records nothing (the next run calls it again), and a crash between `fn` resolving and the
   * record being stored calls it again too: a side effect runs once per recorded result, at least
   * once. Steps and waitFor calls are matched to their records by their order in the run (the same
   * on every run; `name`, 1-200 characters, is checked against it). The records are removed when
   * the delivery is committed. Holds the concurrency slot and counts towards timeoutMs (`fn` is the
   * handler's own work).
   */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  /**
   * A durable request (README, Request/reply): publishes `type` as a request once across the
   * handler's runs and resolves with its reply's data, rejects with RequestFailedError when the
   * replier's group dead-letters it, or with RequestTimeoutError at the deadline (`timeoutMs` from
   * the first run: a redelivery keeps it). The reply goes to the group's own reply topic, is
   * recorded, and survives a crash of the requester: the handler runs again from its start, and this
   * call, by its order among the run's durable calls (request, waitFor, step), returns the recorded
   * reply or waits on for it, without asking again. An attempt that fails with the request's
   * RequestTimeoutError or RequestFailedError (thrown out of the handler) has its record removed:
   * the retry asks anew. While it waits the handler keeps its concurrency slot (a request out is work
   * in flight) and its timeoutMs clock stops (as in waitFor). `durable: false`, or a call inside a
   * ctx.step's function (the step records its result): an in-memory request (bus.request), lost
   * with the process.
   */
  request<R = unknown>(type: string, data: unknown, options?: KeyedRequestOptions): Promise<R>;
}

/**
 * A keyed handler's `ctx.request` options: bus.request's (RequestOptions; spelled out here, as that
 * module imports this one), and `durable`. A durable request sets its id, dedupWindowMs, delay, at
 * and name itself.
 */
export interface KeyedRequestOptions extends Omit<PublishOptions, 'correlationid' | 'replyto'> {
  /**
   * How long to wait for the reply; durable: from the first run of the handler.
   * @default 30000 ms
   */
  timeoutMs?: number | undefined;
  /**
   * false: an in-memory request (bus.request: a crash while it is out forgets it, and the next run
   * asks again).
   * @default true
   */
  durable?: boolean | undefined;
}

/** `ctx.waitFor`'s options. */
export interface WaitOptions<T = unknown> {
  /**
   * Required: how long to wait, in ms or as a duration (`30s`, `10m`, `1d`); 1 ms to 365 days. The
   * deadline it gives is recorded at the first run of the handler and kept by its redeliveries.
   */
  timeout: number | string;
  /**
   * Which event of the awaited type (and of the handler's key) to take: the first one for which it
   * returns true (one that throws counts as false). Default: the first one.
   */
  match?: ((event: CloudEvent<T>) => boolean) | undefined;
}

/** Reasons a keyed delivery becomes a dead letter before or after its handler. */
export const NO_KEY = 'no_key';
export const STATE_TOO_LARGE = 'state_too_large';

/** One key's stored state, as `bus.keys` shows it. */
export interface KeyState {
  key: string;
  /** The stored state (parsed JSON). */
  state: unknown;
  /** Commits of this key so far (since its record was last created). */
  version: number;
  updatedAt: Date;
}

/**
 * Keyed subscriptions' state in the store, per group (the agent's name for keyed agents): for
 * inspection and erasure (`agentbus state get|ls|rm`). Present on stores with keyed state (both adapters).
 */
export interface KeyedStates {
  get(group: string, key: string): Promise<KeyState | null>;
  /** Keys with state, in key order after `after`, at most `limit` (default 100, at most 10,000). */
  list(group: string, options?: { after?: string | undefined; limit?: number | undefined }): Promise<Array<{ key: string; version: number; bytes: number; updatedAt: Date }>>;
  /**
   * Erases the keys from the store (GDPR erasure): their state and every durable step and wait
   * record of their handlers (`ctx.step` results, `ctx.waitFor` records); resolves how many of
   * the keys had something erased (state, or at least one record). An owner running the key at
   * that moment notices at its next commit and starts over from the store; a handler of the key
   * running then goes on: a wait it is parked in still takes its event, and a step whose function
   * is running fails with OwnershipLostError (a failed attempt; the retry runs the steps again).
   */
  remove(group: string, keys: string[]): Promise<number>;
  /** Groups with keyed state or an owner. */
  groups(): Promise<string[]>;
  /**
   * The group's durable waits (`ctx.waitFor`) recorded in the store, of `key` alone when given, by
   * key then deadline, at most `limit` (default 100, at most 10,000). A record stays until the
   * event whose handler waited is committed: one listed may have ended (`matched`, or its deadline
   * passed) with the handler not yet done. A day past its deadline an uncommitted one expires.
   */
  waits(group: string, options?: { key?: string | undefined; limit?: number | undefined }): Promise<KeyWait[]>;
  /**
   * The group's durable steps (`ctx.step`) recorded in the store for events not yet committed (a
   * handler still running or waiting, or a dead letter), of `key` alone when given, by key, at most
   * `limit` (default 100, at most 10,000), with their recorded results: what a retry or a restart
   * of their handler would get back without calling the step's function.
   */
  steps(group: string, options?: { key?: string | undefined; limit?: number | undefined }): Promise<KeyStep[]>;
}

/** A durable step's record as `bus.keys.steps` lists it. */
export interface KeyStep {
  key: string;
  /** The step's name (`ctx.step(name, fn)`). */
  name: string;
  /** A result is recorded: later runs of its handler for the same event return it without calling `fn`. */
  recorded: boolean;
  /** The recorded result (undefined while none is, or when `fn` resolved undefined). */
  result: unknown;
  /** The record's id in the store. */
  id: string;
}

/** A durable wait as `bus.keys.waits` lists it. */
export interface KeyWait {
  key: string;
  /** The awaited event type. */
  type: string;
  deadline: Date;
  /** An event was taken for it: the handler has it (or gets it at its next run). */
  matched: boolean;
  /** The record's id in the store. */
  id: string;
}

