// The Driver contract: what an adapter implements for the engine, in groups (log, groups, reads,
// leases, dead letters, admin, state), and the liveness constants every store shares.
import type { CloudEvent } from './event.js';
import type { DeadLetter, StoreHealth, TopicStats } from './contract.js';
import type { AppendEntry, AppendHas, Delivery, RangeQuery, ReadRequest, StoreBound } from './delivery.js';
import type { StateStore } from './state.js';

// The records a driver exchanges with the engine (in delivery.ts, which state.ts uses too).
export type { AppendEntry, AppendHas, Delivery, RangeQuery, ReadRequest, StoreBound } from './delivery.js';
export { isoTime, MAX_TIME_MS } from './delivery.js';

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
 * adapter keeps the same semantics by construction, and a new store (Postgres, say) is written from
 * this file alone (with the records it re-exports from delivery.ts): one object per group below (an
 * adapter's parts implement them directly), plus close; the conformance suite (test/conformance/)
 * then checks it. Not a public API.
 */
export interface Driver {
  /** The stored events: appending, reading back outside any group, the topics that exist. */
  readonly log: DriverLog;
  /** Consumer groups: creating one, moving its cursor, and its consumers' liveness. */
  readonly groups: DriverGroups;
  /** The read path: taking deliveries for a consumer of a group. */
  readonly reads: DriverReads;
  /** What happens to the deliveries a consumer holds (acknowledged, renewed, released, counted). */
  readonly leases: DriverLeases;
  /** The groups' dead letters, with the words of Bus.deadLetters, plus `add`. */
  readonly deadLetters: DriverDeadLetters;
  /** Stats, retention, housekeeping, reachability and health. */
  readonly admin: DriverAdmin;
  /** Keyed subscriptions' owners and per-key state (bus/state.ts); an adapter without it refuses `key`. */
  readonly state?: StateStore;
  /** Delayed publishes' due entries; an adapter without it refuses `delay` and `at`. */
  readonly due?: DriverDue;
  /** Lets go of the store: closes a connection or file the bus opened, ends waiting reads. */
  close(): Promise<void>;
}

export interface DriverLog {
  /**
   * The body append() stores for an event; default (no method): the envelope as JSON (event.ts
   * encodeEvent). Called at publish, before anything is queued, so it refuses what encodeEvent
   * refuses, by the same measure: data that is not JSON (INVALID_OPTION) and an event whose
   * envelope as JSON is over `maxBytes` (PAYLOAD_TOO_LARGE).
   */
  encode?(event: CloudEvent, maxBytes: number): string;
  /**
   * Stores entries in order, in one round trip. Entries with `dedup` set are skipped when seen in the
   * window. `has`: what the entries hold besides undelayed events (AppendHas); omitted, the driver
   * looks (appendHas).
   */
  append(entries: AppendEntry[], has?: AppendHas): Promise<void>;
  /**
   * Whether a lone publish may be appended at once, inside the publish() call, when no other append
   * waits or is in flight (bus/batcher.ts atOnce). Absent, or false: every append waits for the next
   * setImmediate, so the calls of one turn of the event loop go together. For a store whose append
   * costs no round trip (SQLite, where it saves an in-process hop the wait for the next turn), or
   * whose appends overlap (one Redis: the XADD is written in the call, as a bare client's is).
   */
  appendsNow?(): boolean;
  /**
   * Appends are stored in the order they are called even when one is called before the previous
   * one settled (one Redis: every append's commands are written at the call, in one connection's
   * pipeline). The publisher then sends a turn's publishes while an earlier append is in flight
   * (bus/batcher.ts overlap) instead of waiting for its reply; an append of named delayed events
   * (several steps) still waits. Absent or false: each append waits for the previous one to settle.
   */
  readonly overlapAppends?: boolean;
  /** Stored events of a topic, oldest first, after `after` (exclusive) within [from, to]; `attempts` 0. */
  range(topic: string, q: RangeQuery): Promise<Delivery[]>;
  /** Position of the newest event of a topic, or null when empty. */
  last(topic: string): Promise<string | null>;
  /** Every topic that exists, for pattern subscriptions: cheap when nothing changed (consumers ask every 100 ms). */
  topics(): Promise<string[]>;
  /**
   * The topics registered through agentbus (published or subscribed) whose name starts with
   * `prefix`, read from the store's list of them alone (no scan for other programs' streams, which
   * topics() may make): reply topics, for the housekeeping that sweeps them (bus/replies.ts).
   */
  registered(prefix: string): Promise<string[]>;
}

/**
 * Due entries: append() stores an entry with `dueAt` here, durably, before it resolves; a bus that
 * subscribed or published a delayed event runs a mover (bus/due.ts) calling move().
 */
/** A due entry that was moved: its topic and due time (epoch ms). */
export interface DueEntry {
  topic: string;
  dueAt: number;
}

export interface DriverDue {
  /**
   * Moves up to `max` entries due at or before `now` (epoch ms) into their topics, oldest due time
   * first: each atomically (the due entry removed and the event appended in one script or
   * transaction), so movers in several processes never move one twice and a mover killed midway
   * leaves each moved or still due. Resolves how many were moved and the earliest due time left
   * (null: none, as far as the store says cheaply); `failed`, the errors of parts that could not be
   * moved while others were (one topic's due set on Redis), which the mover logs and tries again;
   * `entries`, the topic and due time of each entry moved (the mover reports their lateness).
   * Rejects when nothing could be asked (the store unreachable).
   */
  move(now: number, max: number): Promise<{ moved: number; next: number | null; failed?: unknown[]; entries: DueEntry[] }>;
  /** Due entries per topic (topics with none may be left out), for stats and metrics. */
  counts(): Promise<Map<string, number>>;
  /**
   * Removes the pending entry stored under `name` (AppendEntry.dueName), whatever its topic, each
   * removal atomic against a move (an entry is removed or moved, never both). Resolves whether one
   * was pending. `once`: the cancel's own dedup id: a second cancel with the same source + id inside
   * `windowMs` changes nothing and resolves what the first did (a redelivered handler's cancel must
   * not remove what the same handler scheduled after cancelling).
   */
  cancel(name: string, once: { source: string; id: string; windowMs: number } | null): Promise<boolean>;
  /** Pending entries, earliest due first, of one topic or all, at most `limit`; bodies over `maxBytes` are not decoded. */
  list(filter: { type: string | null; limit: number; maxBytes: number }): Promise<DueRecord[]>;
  /** Removes pending entries by DueRecord.id (an unknown or malformed id counts as not found); resolves how many were removed. */
  remove(ids: string[]): Promise<number>;
}

/** A pending due entry as DriverDue.list reads it. */
export interface DueRecord {
  /** The store's id of the entry: Redis `<type>/<token>`, SQLite the row id. */
  id: string;
  topic: string;
  dueAt: number;
  name: string | null;
  /** The event it becomes; null when its body cannot be decoded (or is over maxBytes). */
  event: CloudEvent | null;
}

export interface DriverGroups {
  /**
   * Creates the group on each topic if missing; a new group starts at `from`, and so does a topic it
   * meets later. Resolves with how many stored events of `topics` a group created by this call at
   * `latest` skips (their length at creation, counted cheaply); 0 for a group that existed, or `earliest`.
   */
  create(group: string, topics: string[], from: 'latest' | 'earliest'): Promise<number>;
  /**
   * Moves the group's cursor on `topic` so `from` is the next event delivered. A group that never
   * read `topic`: NotFoundError (NOT_FOUND); a position the store cannot hold: INVALID_OPTION.
   */
  seek(group: string, topic: string, from: StoreBound | 'earliest'): Promise<void>;
  /**
   * The consumer is alive: sent every HEARTBEAT_MS by an open subscription, whether it reads or
   * not, so stats count live consumers (seen within CONSUMER_ALIVE_MS) on every store.
   */
  heartbeat(group: string, consumer: string): Promise<void>;
  /**
   * A consumer closed for good: the store forgets it (stats stop counting it at once) if it holds
   * no delivery; one still holding some stays until they are reclaimed. `topics`: those it read
   * (a store that keeps consumers per topic, as Redis does per stream, needs them; others ignore them).
   */
  forget(group: string, consumer: string, topics: string[]): Promise<void>;
  /**
   * How long ago (ms, by the store's clock) a consumer of `group` last sent a heartbeat; null when
   * the store records none (never, forgotten, or expired). For sweeping reply topics (bus/replies.ts).
   */
  idleFor(group: string): Promise<number | null>;
}

export interface DriverReads {
  /**
   * A read costs a round trip to a server (Redis): consumers whose `readAhead` is unset read ahead
   * while their handlers are fast, to hide it (bus/read-ahead.ts). Absent or false (SQLite, in
   * process): they read only into free slots, where reading ahead only added work (measured).
   */
  readonly roundTrip?: boolean;
  /**
   * Takes up to `max` deliveries for `consumer`: first ones whose lease expired (another consumer died,
   * or a dead letter was retried), then new events. Each taken delivery's stored attempts grow by one
   * and it is leased for `leaseMs`. Waits up to `blockMs` when there is nothing; returns early on abort.
   * `req.ack` are acknowledged first, in the same round trip; if read throws, they were not.
   */
  read(req: ReadRequest): Promise<Delivery[]>;
  /**
   * Ends the consumer's read that is waiting for events now (it returns what it has, maybe nothing),
   * so the next read waits on the topics the consumer has just added. A read not waiting is untouched.
   * Optional: without it, a new topic is read once the waiting read returns (at most `blockMs`).
   */
  wake?(group: string, consumer: string): void;
}

export interface DriverLeases {
  ack(group: string, deliveries: Delivery[]): Promise<void>;
  /**
   * Extends the lease of deliveries still held by `consumer` to `leaseMs` from now (a store that
   * measures a lease from the last claim, as Redis does with idle time, restarts it and ignores `leaseMs`).
   */
  renew(group: string, consumer: string, deliveries: Delivery[], leaseMs: number): Promise<void>;
  /** Gives held deliveries back to the group now (lease expired at once), storing each one's `attempts`. */
  release(group: string, consumer: string, deliveries: Delivery[]): Promise<void>;
  /** Counts one more attempt in the store for a delivery the consumer keeps and runs again (stores `delivery.attempts + 1`). */
  countAttempt(group: string, delivery: Delivery): Promise<void>;
  /**
   * Stores `attempts` as the delivery's attempt count while `consumer` still holds it (else does
   * nothing; on Redis its lease restarts too). A handler parked in a durable wait holds its
   * delivery one attempt down, and back up when it resumes (keyed/slots.ts): a consumer that dies
   * while the handler waits costs no attempt.
   */
  setAttempts(group: string, consumer: string, delivery: Delivery, attempts: number): Promise<void>;
}

/** Dead letters; list, get, retry and purge are Bus.deadLetters' (ids and filter already checked). */
export interface DriverDeadLetters {
  /**
   * Moves a delivery to the group's dead letters and acknowledges it, atomically. `stack`: the thrown
   * error's, already bounded (see stackOf in thrown.ts), kept as DeadLetter.stack.
   */
  add(group: string, delivery: Delivery, reason: string, error: string, stack?: string): Promise<void>;
  list(filter: { group?: string; type?: string; limit: number }): Promise<DeadLetter[]>;
  get(id: string): Promise<DeadLetter | null>;
  /** Hands each dead letter back to the group that failed it, and only to it, with fresh attempts; resolves how many were found. */
  retry(ids: string[]): Promise<number>;
  /** Resolves how many were found and removed. */
  purge(ids: string[]): Promise<number>;
}

export interface DriverAdmin {
  stats(): Promise<TopicStats[]>;
  /**
   * Applies retention, on the topics this deployment publishes to; `exact` for an explicit
   * bus.trim(), otherwise approximately (cheaper on Redis). Resolves how many events were removed.
   * The bus' timer calls it only when retention is set; bus.trim() always (a read-only store refuses it).
   */
  trim(retention: { maxLen: number; maxAgeMs: number } | null, exact: boolean): Promise<number>;
  /**
   * Optional: removes what expired: dedup markers past their window, consumers gone (not seen
   * within CONSUMER_ALIVE_MS, holding nothing), keyed state past its TTL. Run by the bus every
   * retention interval (10 s without retention) and by bus.trim(). A store whose records expire by
   * themselves (Redis) has none.
   */
  housekeep?(): Promise<void>;
  /**
   * Removes a reply topic whole (bus/replies.ts): its events, its one group (named as the topic)
   * with its cursor, pending deliveries, consumers and dead letters, and the topic from the store's
   * lists (topics(), stats). For reply topics only: nothing else reads one. A topic already gone is no
   * error. Resolves false when this bus leaves it to others (a read-only SQLite bus).
   */
  dropTopic(topic: string): Promise<boolean>;
  /** Resolves when the store answers; rejects when it cannot be reached. */
  ping(): Promise<void>;
  /**
   * Optional: the store's pressure and whether it accepts writes (see StoreHealth), with the sizes
   * of `topics` from a bounded cache. Adapters add it with their pressure module
   * (adapters/<store>/pressure.ts), which also watches append for refused writes.
   */
  health?(topics: string[]): Promise<StoreHealth>;
}
