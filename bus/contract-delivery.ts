// A delivery as the Bus contract (bus/contract.ts) hands it over: the handler and its context, what
// became of the delivery (onOutcome), and the subscription that runs them.
import type { CloudEvent } from './event.js';

/** A delivery's handler; `T` is the `data` the caller expects (`(e: CloudEvent<{ id: string }>) => ...`). */
export type Handler<T = unknown> = (event: CloudEvent<T>, ctx: DeliveryContext) => unknown;

export interface DeliveryContext {
  /** 1 for the first delivery. */
  readonly attempt: number;
  /** Store position of the event in its topic (Redis stream id, SQLite sequence). */
  readonly position: string;
  readonly group: string;
  readonly consumer: string;
  /**
   * Aborted when the subscription stops waiting for this handler: close without drain, drain
   * timeout, or `timeoutMs` (then with a TimeoutError as its reason).
   */
  readonly signal: AbortSignal;
  /** Dead-letter this event once the handler returns, with no further attempt. */
  deadLetter(reason: string): void;
  /**
   * Once the handler returns, count this attempt as failed and run the event again after `ms`
   * (instead of the backoff), as throwing `new RetryLaterError(ms)` does: e.g. a 429's Retry-After.
   * After `maxAttempts` deliveries it is a dead letter `failed`, as for any failure.
   */
  retryIn(ms: number): void;
  /**
   * The reply to a request (an event with `replyto`, see bus.request), instead of the handler's
   * return value. Without either, a request is answered with null by a subscription that names
   * its type. One that took it through a pattern (an observer on `*`) answers only by calling this.
   */
  reply(value: unknown): void;
}

/**
 * What became of one delivery, reported to `SubscribeOptions.onOutcome`: `handled` (acknowledged),
 * `failed` (the handler threw; `retry` says whether another attempt follows), `dead_lettered`
 * (with its reason: `failed`, `malformed`, `oversize`, `non_retryable` or the handler's own), reported
 * once the dead letter is stored.
 */
export interface DeliveryOutcome {
  outcome: 'handled' | 'failed' | 'dead_lettered';
  type: string;
  group: string;
  /** The event's id ('' for an entry that could not be decoded) and its position in the topic. */
  id: string;
  position: string;
  attempt: number;
  /** Handler run time; 0 for dead letters that never reached the handler. */
  durationMs: number;
  retry?: boolean;
  reason?: string;
  error?: unknown;
  /** `failed` only: the attempt ran past `timeoutMs` (`error` is its TimeoutError). */
  timedOut?: boolean;
}

export interface Subscription {
  readonly group: string;
  readonly consumer: string;
  /**
   * Stops fetching. With `drain` (default) waits up to `drainTimeoutMs` for handlers in flight and
   * acknowledges those that finish; whatever did not finish stays pending for another consumer.
   */
  close(options?: { drain?: boolean | undefined }): Promise<void>;
  /** A keyed subscription's figures in this process (see KeyedStats); null when it is not keyed. */
  keyedStats?(): KeyedStats | null;
}

/**
 * A keyed subscription's figures in this process (`Subscription.keyedStats()`; the host exports
 * them as metrics). Counts run from the subscription's start; the cache figures are as of the call.
 */
export interface KeyedStats {
  /** This consumer holds the group now (its lease has not run out); false while standing by. */
  owner: boolean;
  /** Keys whose state is held in memory (at most maxActiveKeys, plus those in use). */
  activeKeys: number;
  /** Their states' size as JSON (characters; bytes for ASCII state). */
  stateBytes: number;
  /** Keys loaded from the store (a first event, or one after eviction or a takeover). */
  loads: number;
  /** Keys passivated past maxActiveKeys (least recently used first). */
  evictions: number;
  /** Keys whose record changed outside this owner at a commit (removed by `state rm`, or a lost lease). */
  conflicts: number;
  /** Commits (batches of state changes and acknowledgements) stored. */
  commits: number;
  /** Times this consumer took the group (at its start, or from an owner that died or left). */
  takeovers: number;
  /** Deliveries found already applied (non-atomic stores: the state was written, the ack lost). */
  duplicates: number;
  /**
   * Handlers in `ctx.waitFor` now (each parked until its match or deadline; they hold no concurrency
   * slot), or waiting for a durable `ctx.request`'s reply (they hold their slot).
   */
  waiting: number;
  /**
   * Waits that returned a matching event: taken as it arrived, or found recorded by a handler run
   * again after a takeover (that run counts it again, on its host).
   */
  waitsResumed: number;
  /** Waits that ended with WaitTimeoutError: their deadline passed with no match. */
  waitsTimedOut: number;
  /**
   * Durable steps (`ctx.step`) that returned the result recorded by an earlier run of their handler
   * (a retry, a restart, a takeover) without calling their function.
   */
  stepsReplayed: number;
  /**
   * Durable requests (keyed `ctx.request`) that returned (or failed with) the reply recorded for an
   * earlier run of their handler, without asking again.
   */
  requestsReplayed: number;
}
