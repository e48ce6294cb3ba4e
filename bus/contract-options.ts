// The options of the Bus contract (bus/contract.ts): a bus', retention, backoff, delivery and
// subscribe options (a keyed subscription's in keyed/contract.ts). Each `@default` here is its
// table's in bus/options.ts (checked by test/structure.test.ts).
import type { Logger } from 'pino';
import type { DeliveryOutcome } from './contract-delivery.js';
import type { KeyedOptions } from './keyed/contract.js';
import type { PublishOptions } from './event.js';

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
  /**
   * A reply topic (`agentbus.reply.<hex>`, see Bus.request) none of whose consumers sent a heartbeat
   * for this long (its bus crashed or was killed) is removed by this bus' housekeeping, once a
   * second look at least 3 s later still finds it so. From 2000 ms; a bus' own reply topic is
   * removed when it closes.
   * @default 60000 ms
   */
  replyTopicIdleMs?: number | undefined;
  /**
   * Whether this bus moves due delayed events into their topics (README, Delayed events). When true,
   * its mover starts once the bus subscribes or publishes a delayed event, never before; false: it
   * never moves them (some other running bus must), as the CLI's one-shot commands do.
   * @default true
   */
  moveDue?: boolean | undefined;
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
  /**
   * Longest a handler call may run: past it `ctx.signal` aborts, the attempt fails with a
   * TimeoutError (retried, then dead-lettered like any failure) and its slot is free at once, even
   * if the handler ignores the signal (what it returns or publishes later is dropped). 0: no limit.
   * @default 0
   */
  timeoutMs?: number | undefined;
  /**
   * Events a consumer may hold beyond `concurrency`, read before a slot frees (their leases renewed
   * like running ones), so fast handlers do not wait for each read's round trip: it holds at most
   * `concurrency + readAhead` (0 to 20000). 0 reads only into free slots: every event held is
   * running, which splits slow handlers' events more evenly between a group's consumers, and a
   * crash leaves fewer events waiting `claimIdleMs` for another consumer. Unset, it follows the
   * handlers (bus/read-ahead.ts): `2 x concurrency` while this consumer's handler calls average
   * under 10 ms, 0 while they are slower and until the first one is measured; on a store whose
   * reads cost no round trip (SQLite), 0.
   * @default Redis: 2 x concurrency while handlers average under 10 ms, else 0; SQLite: 0
   */
  readAhead?: number | undefined;
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

/** Options of `bus.request` (and `ctx.request`): the publish options, but correlationid and replyto, which it sets. */
export interface RequestOptions extends Omit<PublishOptions, 'correlationid' | 'replyto'> {
  /**
   * How long to wait for the reply.
   * @default 30000 ms
   */
  timeoutMs?: number | undefined;
}
