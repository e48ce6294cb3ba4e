import type { CloudEvent } from './event.js';
import type { DeadLetter, StoreHealth, TopicStats } from './contract.js';
import type { StateStore } from './state.js';

/**
 * A consumer counts as live in stats while its last heartbeat is younger than this; a consumer not
 * live and holding nothing is removed from the store's records.
 */
export const CONSUMER_ALIVE_MS = 10_000;
/** How often an open subscription tells the store it is alive. */
export const HEARTBEAT_MS = 1000;

/**
 * The store-facing half of an adapter. The shared engine (bus/engine.ts) builds the whole Bus
 * contract (batching, validation, retries, ordering, leases, draining) on these primitives, so every
 * adapter keeps the same semantics by construction. Not a public API.
 */
export interface Driver {
  /**
   * The body append() stores for an event; default (no method): the envelope as JSON (event.ts
   * encodeEvent). Called at publish, before anything is queued, so it refuses what encodeEvent
   * refuses, by the same measure: data that is not JSON (INVALID_OPTION) and an event whose
   * envelope as JSON is over `maxBytes` (PAYLOAD_TOO_LARGE).
   */
  encode?(event: CloudEvent, maxBytes: number): string;
  /** Stores entries in order, in one round trip. Entries with `dedup` set are skipped when seen in the window. */
  append(entries: AppendEntry[]): Promise<void>;
  /** Every topic that exists, for pattern subscriptions: cheap when nothing changed (consumers ask every 100 ms). */
  topics(): Promise<string[]>;
  /**
   * Ends the consumer's read that is waiting for events now (it returns what it has, maybe nothing),
   * so the next read waits on the topics the consumer has just added. A read not waiting is untouched.
   */
  wakeRead?(group: string, consumer: string): void;
  /**
   * Creates the group on each topic if missing; a new group starts at `from`, and so does a topic it
   * meets later. Resolves with how many stored events of `topics` a group created by this call at
   * `latest` skips (their length at creation, counted cheaply); 0 for a group that existed, or `earliest`.
   */
  createGroup(group: string, topics: string[], from: 'latest' | 'earliest'): Promise<number>;
  /**
   * Takes up to `max` deliveries for `consumer`: first ones whose lease expired (another consumer died,
   * or a dead letter was retried), then new events. Each taken delivery's stored attempts grow by one
   * and it is leased for `leaseMs`. Waits up to `blockMs` when there is nothing; returns early on abort.
   * `req.ack` are acknowledged first, in the same round trip; if read throws, they were not.
   */
  read(req: ReadRequest): Promise<Delivery[]>;
  ack(group: string, deliveries: Delivery[]): Promise<void>;
  /** Extends the lease of deliveries still held by `consumer`. */
  renew(group: string, consumer: string, deliveries: Delivery[], leaseMs: number): Promise<void>;
  /** Gives held deliveries back to the group now (lease expired at once), storing each one's `attempts`. */
  release(group: string, consumer: string, deliveries: Delivery[]): Promise<void>;
  /**
   * A consumer closed for good: the store forgets it (stats stop counting it at once) if it holds
   * no delivery; one still holding some stays until they are reclaimed.
   */
  forget(group: string, consumer: string, topics: string[]): Promise<void>;
  /**
   * The consumer is alive: sent every HEARTBEAT_MS by an open subscription, whether it reads or
   * not, so stats count live consumers (seen within CONSUMER_ALIVE_MS) on every store.
   */
  heartbeat(group: string, consumer: string): Promise<void>;
  /** Counts one more attempt in the store for a delivery the consumer keeps and runs again. */
  countAttempt(group: string, delivery: Delivery): Promise<void>;
  /**
   * Moves a delivery to the group's dead letters and acknowledges it, atomically. `stack`: the thrown
   * error's, already bounded (see stackOf in thrown.ts), kept as DeadLetter.stack.
   */
  deadLetter(group: string, delivery: Delivery, reason: string, error: string, stack?: string): Promise<void>;
  /** Stored events of a topic, oldest first, after `after` (exclusive) within [from, to]. */
  range(topic: string, q: RangeQuery): Promise<Delivery[]>;
  /** Position of the newest event of a topic, or null when empty. */
  last(topic: string): Promise<string | null>;
  /** Moves the group's cursor so `from` is the next event delivered. */
  seek(group: string, topic: string, from: StoreBound | 'earliest'): Promise<void>;
  dlqList(filter: { group?: string; type?: string; limit: number }): Promise<DeadLetter[]>;
  dlqGet(id: string): Promise<DeadLetter | null>;
  dlqRetry(ids: string[]): Promise<number>;
  dlqPurge(ids: string[]): Promise<number>;
  stats(): Promise<TopicStats[]>;
  /** Applies retention; `exact` for an explicit bus.trim(), otherwise approximately (cheaper on Redis). */
  trim(retention: { maxLen: number; maxAgeMs: number } | null, dedupWindowMs: number, exact: boolean): Promise<number>;
  /** Resolves when the store answers; rejects when it cannot be reached. */
  ping(): Promise<void>;
  /**
   * Optional: the store's pressure and whether it accepts writes (see StoreHealth), with the sizes
   * of `topics` from a bounded cache. Adapters add it with their pressure module
   * (adapters/<store>/pressure.ts), which also watches append for refused writes.
   */
  health?(topics: string[]): Promise<StoreHealth>;
  /** Keyed subscriptions' owners and per-key state (bus/state.ts); an adapter without it refuses `key`. */
  readonly state?: StateStore;
  close(): Promise<void>;
}

export interface AppendEntry {
  topic: string;
  event: CloudEvent;
  /** What the driver's encode() made of the event (without one: the envelope as JSON). */
  body: string;
  /** The caller chose the id: check the dedup window. Generated ids are unique and skip it. */
  dedup: boolean;
  dedupWindowMs: number;
}

export interface ReadRequest {
  /** Deliveries to acknowledge before taking more (saves a round trip per batch). */
  ack: Delivery[];
  group: string;
  consumer: string;
  topics: string[];
  max: number;
  leaseMs: number;
  blockMs: number;
  signal: AbortSignal;
  /** The bus' maxPayloadBytes: a larger entry is not decoded (see Delivery.oversize). */
  maxBytes: number;
}

export interface Delivery {
  topic: string;
  position: string;
  /** Deliveries so far, this one included. */
  attempts: number;
  event: CloudEvent | null;
  /**
   * The stored entry as text, kept for dead letters. Redis, an entry of ours in the fields or flat
   * layout: the envelope as JSON, made from the stored fields when first asked for.
   */
  raw: string;
  /** Why the entry could not be decoded; set when `event` is null. */
  malformed?: string;
  /**
   * The entry is larger than ReadRequest.maxBytes: it was not decoded (its size is checked before
   * parsing, so a huge entry costs no parse), `raw` holds only its start (see event.ts oversize())
   * and its dead letter's reason is `oversize`.
   */
  oversize?: boolean;
  /**
   * Redis: `raw` is a foreign entry's fields, not an envelope. Its dead letter stores `event` as
   * JSON instead when it can be serialised, so a retry (read back as an envelope) decodes the same.
   */
  foreign?: boolean;
  /** The adapter's own reference (Redis: the stream key it was read from). */
  ref?: string;
}

/** The latest time a JavaScript Date holds (ms since the epoch); bounds past it are refused. */
export const MAX_TIME_MS = 8_640_000_000_000_000;

/** ISO-8601 of a stored epoch-ms value, or null when it is no time (a damaged or foreign record). */
export function isoTime(ms: unknown): string | null {
  const n = typeof ms === 'string' && ms.trim() !== '' ? Number(ms) : typeof ms === 'number' ? ms : NaN;
  return Number.isFinite(n) && Math.abs(n) <= MAX_TIME_MS ? new Date(n).toISOString() : null;
}

/** A resolved bound: a time in epoch ms, or a store position (validated by the driver). */
export type StoreBound = { time: number } | { position: string };

export interface RangeQuery {
  from: StoreBound | null;
  to: StoreBound | null;
  after: string | null;
  limit: number;
  /** As ReadRequest.maxBytes. */
  maxBytes: number;
}
