import type { Logger } from 'pino';
import type { CloudEvent, EventInput, PublishOptions } from './event.js';
import type { KeyedOptions, KeyedStates } from './keyed/contract.js';

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
  /** Closes subscriptions (draining them; their handlers may still publish), completes publishes in flight, then the store. Idempotent. */
  close(): Promise<void>;
}

/**
 * Options every adapter's bus takes. Each `@default` is the one in BUS_OPTIONS (bus/options.ts),
 * where the option's range and validator live too.
 */
export interface BusOptions {
  /**
   * CloudEvents `source` of published events.
   * @default `/agentbus/<hostname>`
   */
  source?: string | undefined;
  /**
   * Largest stored event (envelope JSON, UTF-8 bytes), at most 64 MiB. Also applied when reading: a
   * larger stored entry (another program's) is not parsed and becomes a dead letter `oversize`.
   * @default 1 MiB (1048576)
   */
  maxPayloadBytes?: number | undefined;
  /**
   * A caller-chosen `id` republished (same type, source and id) within this window is stored once.
   * @default 1 hour
   */
  dedupWindowMs?: number | undefined;
  /**
   * Per-topic retention, applied approximately (trimmed every `retention.intervalMs`).
   * @default keep everything
   */
  retention?: RetentionOptions | undefined;
  /**
   * pino logger. The default logs dead letters, store errors and outages, and the events a new
   * group at `latest` skips (and the store opened, at debug; at info through a logger given here).
   * @default pino at `LOG_LEVEL`, else info
   */
  logger?: Logger | undefined;
}

export interface RetentionOptions {
  /** Keep at most about this many events per topic. */
  maxLen?: number | undefined;
  /** Drop events older than this (by the time they were stored). */
  maxAgeMs?: number | undefined;
  /**
   * How often to trim.
   * @default 1000 ms
   */
  intervalMs?: number | undefined;
}

export interface BackoffOptions {
  /**
   * Delay before the 2nd attempt.
   * @default 100 ms
   */
  initialMs?: number | undefined;
  /**
   * Ceiling of the delay.
   * @default 30000 ms
   */
  maxMs?: number | undefined;
  /**
   * Growth per attempt.
   * @default 2
   */
  factor?: number | undefined;
}

/**
 * How a group's events are delivered: the subscribe options an agent sets too (`static options`).
 * Each `@default` is the one in DELIVERY_OPTIONS (bus/options.ts).
 */
export interface DeliveryOptions {
  /**
   * Handlers running at once in this consumer; also the most events it holds. 1 keeps publish order.
   * @default 1
   */
  concurrency?: number | undefined;
  /**
   * Deliveries before an event becomes a dead letter; a delivery whose consumer died counts.
   * @default 5
   */
  maxAttempts?: number | undefined;
  /**
   * Delay between attempts: exponential with jitter (half fixed, half random).
   * @default { initialMs: 100, maxMs: 30000, factor: 2 }
   */
  backoff?: BackoffOptions | undefined;
  /**
   * `subject`: events of one subject run one at a time, in order; others in parallel.
   * @default none
   */
  orderBy?: 'none' | 'subject' | undefined;
  /**
   * A delivery whose lease is not renewed for this long goes to another consumer.
   * @default 30000 ms
   */
  claimIdleMs?: number | undefined;
  /**
   * Where a new group starts: `latest` (events published from now on) or `earliest`.
   * @default latest
   */
  from?: 'latest' | 'earliest' | undefined;
  /**
   * How long `close()` waits for handlers in flight.
   * @default 30000 ms
   */
  drainTimeoutMs?: number | undefined;
}

/** Options of `bus.subscribe`. Each `@default` is the one in SUBSCRIBE_OPTIONS (bus/options.ts). */
export interface SubscribeOptions extends DeliveryOptions, KeyedOptions {
  /** Consumer group: each group gets every event of its types. Required. */
  group: string;
  /** Exact types and prefix patterns (`device.*`, `*`). Required, at least one. */
  types: string[];
  /**
   * Name of this consumer inside the group.
   * @default `<hostname>/<pid>/<random>`
   */
  consumer?: string | undefined;
  /**
   * Called synchronously with the outcome of each delivery (metrics, circuit breakers); must not throw.
   * @default none
   */
  onOutcome?: ((outcome: DeliveryOutcome) => void) | undefined;
}

/** A delivery's handler; `T` is the `data` the caller expects (`(e: CloudEvent<{ id: string }>) => ...`). */
export type Handler<T = unknown> = (event: CloudEvent<T>, ctx: DeliveryContext) => unknown;

export interface DeliveryContext {
  /** 1 for the first delivery. */
  readonly attempt: number;
  /** Store position of the event in its topic (Redis stream id, SQLite sequence). */
  readonly position: string;
  readonly group: string;
  readonly consumer: string;
  /** Aborted when the subscription stops waiting for this handler (close without drain, drain timeout). */
  readonly signal: AbortSignal;
  /** Dead-letter this event once the handler returns, with no further attempt. */
  deadLetter(reason: string): void;
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
}

export interface Subscription {
  readonly group: string;
  readonly consumer: string;
  /**
   * Stops fetching. With `drain` (default) waits up to `drainTimeoutMs` for handlers in flight and
   * acknowledges those that finish; whatever did not finish stays pending for another consumer.
   */
  close(options?: { drain?: boolean | undefined }): Promise<void>;
}

/** A bound of a replay or rewind: a Date, epoch milliseconds, an ISO-8601 time, or a position string. */
export type Bound = Date | number | string;

export interface ReplayOptions {
  /** Exact types and prefix patterns. */
  types: string[];
  /** Inclusive lower bound. Default: the oldest stored event. */
  from?: Bound | undefined;
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

export interface DeadLetter {
  /** Id of the dead letter itself (not the event's). */
  id: string;
  group: string;
  type: string;
  position: string;
  /** The event (typed by its topic), or null when its stored entry could not be decoded (`raw` holds it; for `oversize`, its start). */
  event: CloudEvent | null;
  raw: string | null;
  /** `failed` (handler threw maxAttempts times), `non_retryable`, `malformed`, `oversize`, or the reason given to `ctx.deadLetter`. */
  reason: string;
  /** What the handler threw, as `<name>: <message>`; '' for a reason given to `ctx.deadLetter`. */
  error: string;
  /**
   * The thrown Error's stack (where it was thrown, then `caused by:` its causes'), at most 8192
   * characters. Absent when what was thrown is not an Error, for `ctx.deadLetter`, `malformed` and
   * `oversize`, and for dead letters stored before agentbus kept stacks.
   */
  stack?: string;
  attempts: number;
  /** ISO-8601; null when the stored time is damaged (the dead letter is still listed). */
  failedAt: string | null;
}

export interface DeadLetters {
  list(filter?: { group?: string | undefined; type?: string | undefined; limit?: number | undefined }): Promise<DeadLetter[]>;
  get(id: string): Promise<DeadLetter | null>;
  /** Hands each back to the group that failed it, and only to it, with fresh attempts. Returns how many. */
  retry(ids: string[]): Promise<number>;
  /** Removes them for good. Returns how many. */
  purge(ids: string[]): Promise<number>;
}

export interface TopicStats {
  type: string;
  length: number;
  groups: Array<{ group: string; pending: number; lag: number; consumers: number; deadLetters: number }>;
}

/** What `bus.health()` reports. */
export interface StoreHealth {
  /**
   * null while the store accepts writes; else why it refuses them, as the store said it (Redis
   * `OOM command not allowed ...`, `READONLY ...`, an `UNSAFE_STORE_CONFIG` refusal; SQLite
   * `SQLITE_FULL ...`). Set by a write that failed so, cleared by the next write that succeeds or
   * by a probe showing the store would take one (see README, Store health).
   */
  refused: string | null;
  /** Conditions to warn about now, each under a stable key: memory past 80% of maxmemory, low disk, a WAL past its bound. */
  warnings: Array<{ key: string; message: string }>;
  /** Redis: one entry per master (one node, or each master of a Cluster); absent where INFO was refused. */
  memory?: Array<{ node: string; usedBytes: number; maxBytes: number; policy: string; evictedKeys: number }> | undefined;
  /** SQLite on a file: its size, its WAL's, and the file system under it. */
  disk?: { path: string; fileBytes: number; walBytes: number; freeBytes: number; totalBytes: number } | undefined;
  /** Approximate bytes of the topics asked for that have been sized (see `health()`). */
  topics: Array<{ type: string; bytes: number }>;
}
