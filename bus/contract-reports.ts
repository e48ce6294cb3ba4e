// What a bus reports about its store (bus/contract.ts): dead letters and their operations, per-topic
// stats, and the store's health.
import type { CloudEvent } from './event.js';

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
  /**
   * Hands each back to the group that failed it, and only to it, with fresh attempts. Returns how
   * many. A retried dead letter is gone (get(id) is null afterwards); if its event fails again, it
   * becomes a new dead letter with a new id (the same event and group). A keyed handler's run of the event gets the durable steps and waits its failed runs
   * recorded (ctx.step results, matched waits, wait deadlines), unless `fresh` is true: then those
   * records are removed first, so its steps run again and its waits start over with a new deadline.
   */
  retry(ids: string[], options?: { fresh?: boolean | undefined }): Promise<number>;
  /** Removes them for good, with the durable step and wait records of their events' keyed handler runs. Returns how many. */
  purge(ids: string[]): Promise<number>;
}

/**
 * The store's pending delayed events (`bus.schedules`): delayed publishes, agents' reminders and
 * schedule ticks not yet due.
 */
export interface Schedules {
  /** Earliest due first, of one type or all; `limit` 1 to 100000, default 100. */
  list(filter?: { type?: string | undefined; limit?: number | undefined }): Promise<ScheduledEvent[]>;
  /**
   * Removes the pending event published under `name` (PublishOptions.name), whatever its type;
   * resolves whether one was pending. With `id` (and `source`, default the bus'): the cancel is
   * done once per dedup window, as a publish with an id is stored once: a repeat resolves what the
   * first did and changes nothing.
   */
  cancel(name: string, options?: { id?: string | undefined; source?: string | undefined; dedupWindowMs?: number | undefined }): Promise<boolean>;
  /** Removes pending events by ScheduledEvent.id; resolves how many were found and removed. */
  remove(ids: string[]): Promise<number>;
}

/** A pending delayed event (see Schedules). */
export interface ScheduledEvent {
  /** The store's id of the entry (Redis `<type>/<token>`, SQLite a number), for Schedules.remove; not the event id. */
  id: string;
  type: string;
  /** When it is due, ISO-8601. */
  dueAt: string;
  /** Its name (PublishOptions.name; an agent's reminder: runtime/schedules.ts reminderName), or null. */
  name: string | null;
  /** The event it becomes; null when its stored body cannot be decoded. */
  event: CloudEvent | null;
}

export interface TopicStats {
  type: string;
  length: number;
  groups: Array<{ group: string; pending: number; lag: number; consumers: number; deadLetters: number }>;
  /** Delayed events of this type not yet due (see README, Delayed events); absent on a store without them. */
  due?: number;
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
