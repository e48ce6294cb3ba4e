/**
 * The records a driver (bus/driver.ts) and the engine exchange: entries to append, read and range
 * requests, store bounds, and the Delivery a read or a range returns. Their own file so the state
 * contract (state.ts), which the Driver holds, can use Delivery without importing driver.ts back.
 */
import type { CloudEvent } from './event.js';

export interface AppendEntry {
  topic: string;
  event: CloudEvent;
  /** What the log's encode() made of the event (without one: the envelope as JSON). */
  body: string;
  /** The caller chose the id: check the dedup window. Generated ids are unique and skip it. */
  dedup: boolean;
  dedupWindowMs: number;
  /**
   * Set for a delayed publish (`delay` / `at`): when it is due, epoch ms, always after the publish.
   * The driver stores it in its due structure (Driver.due), not the topic; the dedup check is made
   * now, at publish, against immediate and delayed publishes alike.
   */
  dueAt?: number;
  /**
   * With `dueAt`: the delayed event's name (PublishOptions.name). The driver stores the entry as the
   * name's only pending one: any other pending entry under the name, on any topic, is removed, the
   * one on this topic in the same atomic step as the store (a dedup'd duplicate changes nothing).
   */
  dueName?: string;
}

/**
 * What a batch handed to DriverLog.append holds besides undelayed events, a bitmask the publisher
 * knows from building its entries (so neither it nor the driver looks at each entry again): HAS_DUE,
 * some entries may have `dueAt`; HAS_NAMED, some may have `dueName` (always with HAS_DUE). A bit
 * clear means no entry has it. Without one (a spool forwarding, a test) the driver uses appendHas.
 */
export type AppendHas = number;
export const HAS_DUE = 1;
export const HAS_NAMED = 2;

/** What one entry holds (AppendHas). */
export function entryHas(e: AppendEntry): AppendHas {
  return e.dueAt === undefined ? 0 : e.dueName === undefined ? HAS_DUE : HAS_DUE | HAS_NAMED;
}

/** What a batch holds, found by looking at each entry: for callers that do not know. */
export function appendHas(entries: readonly AppendEntry[]): AppendHas {
  let has = 0;
  for (const e of entries) has |= entryHas(e);
  return has;
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
  /**
   * The stream `position` belongs to, in the adapter's words: positions compare within one `ref`
   * only (keyed state keeps its last applied position per ref). Redis: the stream key it was read
   * from, the topic's or the group's retry stream; SQLite: the topic.
   */
  ref: string;
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
