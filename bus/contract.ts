// The public Bus contract: the bus' semantics and calls, and what replay and rewind take and give.
// Its parts: contract-delivery.ts (a handler, its context, a delivery's outcome, a subscription),
// contract-options.ts (the options), contract-reports.ts (dead letters, stats, health); all are
// re-exported here, so `./contract.js` names the whole contract.
import type { EventInput, PublishOptions } from './event.js';
import type { Handler, Subscription } from './contract-delivery.js';
import type { RequestOptions, SubscribeOptions } from './contract-options.js';
import type { DeadLetters, Schedules, StoreHealth, TopicStats } from './contract-reports.js';
import type { BusObserver } from './contract-observer.js';
import type { KeyedStates } from './keyed/contract.js';
import type { PublishResult, SpoolStats } from './spool.js';

export type { DeliveryContext, DeliveryOutcome, Handler, KeyedStats, Subscription } from './contract-delivery.js';
export type { BackoffOptions, BusOptions, DeliveryOptions, RequestOptions, RetentionOptions, SubscribeOptions } from './contract-options.js';
export type { DeadLetter, DeadLetters, ScheduledEvent, Schedules, StoreHealth, TopicStats } from './contract-reports.js';
export type { PublishResult, SpoolStats } from './spool.js';
export type { BusObserver, DueMoved, RequestOutcome } from './contract-observer.js';

/**
 * The bus: one contract, one adapter per store. Semantics every adapter keeps:
 * - At least once: an event is acknowledged only after its handler resolves. Deliveries held by a
 *   consumer that stopped renewing its lease go to another consumer of the group after `claimIdleMs`;
 *   a handler still running renews its lease, so it is never redelivered under itself.
 * - A throw is a failed delivery: retried with backoff and jitter; after `maxAttempts` deliveries (a
 *   consumer that died mid-delivery counts) the event becomes a dead letter of that group and the
 *   group moves on. Attempts are counted in the store. A failing event blocks nothing behind it,
 *   except, with `orderBy: 'subject'`, events of the same subject.
 * - Each group gets every event of its types; inside a group each event goes to one consumer.
 * - Order: with concurrency 1 a consumer sees a topic in publish order; with `orderBy: 'subject'`,
 *   events of one subject run one at a time, in order.
 * - An event's `type` is the topic it was stored under; an envelope naming another type keeps that
 *   one in `originaltype`. Handlers choose by type, so a forged envelope reaches no other type's handler.
 * - Entries that cannot be decoded become dead letters with reason `malformed`, entries larger than
 *   `maxPayloadBytes` (never parsed) with `oversize`; the consumer goes on.
 * - Bad input (type, size, option) is refused at the call with a ValidationError naming value and limit.
 */
export interface Bus {
  /** Stores one event; resolves with its id once stored. Concurrent calls share one store round trip. */
  publish<T>(type: string, data: T, options?: PublishOptions): Promise<string>;
  /** Stores many events in one round trip; all or none are validated before anything is stored. */
  publishBatch(events: EventInput[]): Promise<string[]>;
  /**
   * As publish, resolving with the id and where the event went: `spooled` true when Redis was
   * unreachable and the event waits in the spool (the Redis `spool` option) to be forwarded.
   */
  publishDetailed<T>(type: string, data: T, options?: PublishOptions): Promise<PublishResult>;
  /** As publishBatch, resolving with a PublishResult per event (a batch is spooled whole or not at all). */
  publishBatchDetailed(events: EventInput[]): Promise<PublishResult[]>;
  /** Present with the Redis `spool` option: its figures (events spooled now, forwarded, oldest age). */
  readonly spool?: { stats(): SpoolStats };
  /**
   * Publishes a request (`correlationid` and `replyto` set) and resolves with the data of its reply
   * (the handling handler's return value), or rejects with RequestFailedError at once when a group
   * naming its type dead-letters it, or with RequestTimeoutError after `timeoutMs`.
   */
  request<R = unknown>(type: string, data: unknown, options?: RequestOptions): Promise<R>;
  /**
   * Starts consuming; resolves once the group exists, so events published after it are delivered.
   * `T` types the handler's `event.data` (as the caller asserts it: stored events are not checked).
   */
  subscribe<T = unknown>(options: SubscribeOptions, handler: Handler<T>): Promise<Subscription>;
  /** Hands stored events to `handler` in position order per type without moving any group. */
  replay<T = unknown>(options: ReplayOptions, handler: Handler<T>): Promise<ReplayResult>;
  /** Moves a group's cursor on one type so the events from `from` on are delivered again. */
  rewind(options: RewindOptions): Promise<void>;
  readonly deadLetters: DeadLetters;
  /** Keyed subscriptions' state in the store (inspection, erasure); both adapters have it. */
  readonly keys?: KeyedStates;
  /** Pending delayed events (list, cancel by name, remove); both adapters have it. */
  readonly schedules?: Schedules;
  /** Per topic: length; per group: pending, lag, consumers, dead letters. */
  stats(): Promise<TopicStats[]>;
  /** Applies retention now, exactly (the timer set by `retention` trims approximately). Returns events removed. */
  trim(): Promise<number>;
  /** Resolves when the store answers (health checks); rejects with the store's error. */
  ping(): Promise<void>;
  /**
   * Whether the store accepts writes, its memory or disk figures, and the conditions that deserve
   * a warning (each logged by the bus at most every 5 minutes, and once when it clears). `topics`:
   * the topics whose approximate size to report (sizes are cached, refreshed at most every 30 s).
   * Both adapters have it; optional for other implementations of this interface.
   */
  health?(options?: { topics?: string[] | undefined }): Promise<StoreHealth>;
  /**
   * Calls `observer` with what this bus does beyond deliveries (its mover's moves, its requests)
   * until the returned function is called: the host's metrics. Both adapters have it; optional for
   * other implementations of this interface.
   */
  observe?(observer: BusObserver): () => void;
  /** Closes subscriptions (draining them; their handlers may still publish), completes publishes in flight, then the store. Idempotent. */
  close(): Promise<void>;
}

/** A bound of a replay or rewind: a Date, epoch milliseconds, an ISO-8601 time, or a position string. */
export type Bound = Date | number | string;

export interface ReplayOptions {
  /** Exact types and prefix patterns. */
  types: string[];
  /** Inclusive lower bound; `earliest` (the default) is the oldest stored event. `latest` is refused: nothing is stored after it. */
  from?: Bound | 'earliest' | undefined;
  /** Inclusive upper bound. Default: the newest event when replay starts. */
  to?: Bound | undefined;
  /** Called after each page of events (up to 500) with the count handed over so far. */
  onProgress?: ((done: number) => void) | undefined;
}

export interface ReplayResult {
  handled: number;
  /** `error` is `<name>: <message>`; `stack`, when the handler threw an Error, its stack (as DeadLetter.stack). */
  failed: Array<{ type: string; position: string; id: string; error: string; stack?: string }>;
}

export interface RewindOptions {
  group: string;
  type: string;
  /** First event to deliver again; `earliest` for the whole topic. */
  from: Bound | 'earliest';
}
