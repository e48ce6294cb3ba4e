/**
 * The store-facing half of keyed subscriptions (keyed agents): one owner per group, the state of each
 * key, and the commit that writes what a batch of deliveries changed together with their
 * acknowledgement. Implemented by each adapter beside its Driver (Driver.state); the engine's keyed
 * consumer (bus/keyed/) builds guarantees 1-3 and 8 of the actor brief on it:
 *
 * - Single activation and order per key: a keyed group is read by one consumer at a time, its
 *   owner, chosen by a lease with an epoch (fencing token). Other consumers of the group stand by
 *   and take over when the owner stops renewing. The owner runs keys in parallel and one key at a
 *   time, in read order.
 * - Exactly-once state: the owner holds its keys' state in memory and commits, per batch, each
 *   touched key once, with an expected version (no lost update) and the epoch (a stale owner's
 *   commit is refused), acknowledging the batch's deliveries in the same atomic step where the
 *   store can (`atomicAck`). Where it cannot (Redis Cluster: state and streams in different slots),
 *   the record keeps the last applied position per source stream, so a redelivery after "state
 *   written, acknowledgement lost" is recognised and only acknowledged.
 * Not a public API.
 */
import type { Delivery } from './delivery.js';

export interface StateRecord {
  /** Incremented by every commit of the key; 0 is "no record". */
  version: number;
  /** The state as JSON text. */
  state: string;
  /** Last applied position per source stream (`appliedKey(delivery)`), kept where acks are not atomic. */
  applied: Record<string, string>;
  /** Epoch ms of the last commit. */
  updatedAt: number;
}

export interface StateWrite {
  key: string;
  /** The version the writer loaded or last committed (0: the key had no record). */
  expectVersion: number;
  /** The new state as JSON; null deletes the key's record (state set to null/undefined). */
  state: string | null;
  /** Merged into the record's applied positions (ignored when `atomicAck`; may be {} then). */
  applied: Record<string, string>;
  /** The record expires this long after the commit; 0 keeps it until removed. */
  ttlMs: number;
  /**
   * True when the writer knows the stored record carries no expiry (it has none, or this writer
   * last wrote it with ttlMs 0): a store that expires records itself need not clear one then.
   */
  noExpiry?: boolean;
  /** Deliveries this write settles: acknowledged with it, and only if it is applied. */
  ack: Delivery[];
}

export interface CommitResult {
  /** Keys whose stored version was not `expectVersion`: nothing of theirs written or acknowledged. */
  conflicts: string[];
}

/**
 * A durable wait of a keyed handler (`ctx.waitFor`, bus/keyed/waits.ts), stored under an id derived
 * from the delivery it belongs to and the wait's ordinal in the handler run, so a redelivered
 * handler finds it again at the same call.
 */
export interface WaitRecord {
  /** The awaited event type. */
  type: string;
  /** The key the handler runs for (the awaited event must be of the same key). */
  key: string;
  /** Epoch ms: fixed when the record is created, never moved by a redelivery. */
  deadline: number;
  /** The matching event as JSON (its envelope), once one was taken; null while waiting. */
  matched: string | null;
}

/** A durable step's record type (bus/keyed/steps.ts): this prefix and the step's name; no event type has a space. */
export const STEP = 'step ';
/**
 * A durable request's record type (bus/keyed/requests.ts): this prefix and the request's type; its
 * `matched` is the reply's envelope. Listed with the waits (it waits for its reply).
 */
export const REQUEST = 'request ';

/** A wait record as a listing shows it (StateStore.listWaits). */
export interface WaitListing {
  /** The record's id (derived from the delivery whose handler waits and the wait's ordinal). */
  id: string;
  key: string;
  type: string;
  /** Epoch ms. */
  deadline: number;
  /** True once an event was taken for it (its handler has it, or will at its next run), or a step's result recorded. */
  matched: boolean;
  /** Listing steps: the recorded result's JSON (`{"v": result}`, steps.ts), null while none is. Listing waits: null. */
  result: string | null;
}

/** The owner of a group: who holds it, under which epoch. */
export interface Ownership {
  /** Grows by one each time the group changes hands; commits carry it. */
  epoch: number;
  /** True when this call acquired the group (it was free or its lease expired); false when it renewed. */
  acquired: boolean;
}

export interface StateStore {
  /**
   * True when commit() acknowledges its writes' deliveries in the same atomic step as it writes them
   * (SQLite, single-node Redis): then `applied` positions are never consulted.
   */
  readonly atomicAck: boolean;
  /**
   * Takes the group for `consumer` for `leaseMs`, or renews it when `consumer` holds it. Resolves
   * null when another consumer holds an unexpired lease.
   */
  own(group: string, consumer: string, leaseMs: number): Promise<Ownership | null>;
  /** Gives the group up now if `consumer` holds it under `epoch` (a standby takes it at once). */
  disown(group: string, consumer: string, epoch: number): Promise<void>;
  /**
   * Right after acquiring: claims for `consumer` every delivery pending in the group on `topics`,
   * whoever held it, and returns them in position order per stream, each one's stored attempts grown
   * by one (as a claim of an expired lease). They come before any new event of the group, so a
   * key's events keep their order across a change of owner. Decodes as read() does (`maxBytes`).
   */
  takeOver(group: string, consumer: string, topics: string[], maxBytes: number): Promise<Delivery[]>;
  /** The records of `keys` (absent: no record, or expired). One round trip. */
  load(group: string, keys: string[]): Promise<Map<string, StateRecord>>;
  /**
   * Writes each key's state if its version is as expected, checks the group is still owned by
   * `consumer` under `epoch` (else rejects with OwnershipLostError and writes nothing), and
   * acknowledges each applied write's `ack` (with it when `atomicAck`, else right after). `ack`
   * outside any write (deliveries that touched no state) is acknowledged too.
   */
  commit(group: string, consumer: string, epoch: number, writes: StateWrite[], ack: Delivery[]): Promise<CommitResult>;
  /** One key's record, for inspection (`agentbus state get`). */
  get(group: string, key: string): Promise<StateRecord | null>;
  /** Keys of a group with a record, in key order after `after`, up to `limit`, with their sizes. */
  list(group: string, q: { after?: string | undefined; limit: number }): Promise<Array<{ key: string; version: number; bytes: number; updatedAt: number }>>;
  /**
   * Erases `keys` from the group (`agentbus state rm`): deletes each key's state record and every
   * wait and step record of that key (WaitRecord.key), whichever delivery it belongs to. Resolves
   * how many of `keys` had something erased (a live state record, or at least one live wait or step
   * record), each key counted once.
   */
  remove(group: string, keys: string[]): Promise<number>;
  /** Groups with state records or an owner (for `agentbus state ls` without an agent). */
  groups(): Promise<string[]>;
  /**
   * Creates the wait record `id` of `group` unless it exists, and resolves the stored one (the
   * first deadline wins). The record expires `ttlMs` after its deadline if nobody removes it.
   * Not fenced by the epoch: creating is idempotent, and a stale owner's handler ends with its tenure.
   */
  openWait(group: string, id: string, wait: { type: string; key: string; deadline: number }, ttlMs: number): Promise<WaitRecord>;
  /**
   * Records `event` (JSON) as the match of wait `id` unless one is recorded already; resolves the
   * recorded match (the first one wins), or null when the record does not exist (removed or expired).
   */
  matchWait(group: string, id: string, event: string): Promise<string | null>;
  /**
   * Removes wait and step records by id (their delivery was committed, or its dead letter purged or
   * retried fresh); resolves how many existed.
   */
  removeWaits(group: string, ids: string[]): Promise<number>;
  /**
   * The group's wait records not yet expired (of `key` alone, when given), by key then deadline,
   * at most `limit`: for inspection (`agentbus state waits`, `state get`). With `steps` false those
   * of waits, with `steps` true those of durable steps (type `step <name>`, bus/keyed/steps.ts) with
   * their results. A record stays until its delivery is committed, so one whose wait has ended
   * (matched, or past its deadline) may still be listed.
   */
  listWaits(group: string, q: { key?: string | undefined; limit: number; steps: boolean }): Promise<WaitListing[]>;
  /** Orders two positions of one source stream: negative when `a` comes first. */
  comparePositions(a: string, b: string): number;
}

/** The source stream a delivery's position belongs to: the key of `StateRecord.applied`. */
export function appliedKey(d: Delivery): string {
  return d.ref;
}

/**
 * A test hook for crash tests (never set in production): with `AGENTBUS_TEST_KILL_AFTER_STATE_WRITE=N`
 * a store kills its own process with SIGKILL right after the N-th state write and before the
 * acknowledgement it carries is stored (non-atomic stores), or right after the N-th commit
 * (atomic ones): the worst moment for exactly-once state.
 */
export function killAfterStateWrite(): void {
  const n = process.env.AGENTBUS_TEST_KILL_AFTER_STATE_WRITE;
  if (n === undefined) return;
  const left = Number(n) - 1;
  if (left > 0) process.env.AGENTBUS_TEST_KILL_AFTER_STATE_WRITE = String(left);
  else process.kill(process.pid, 'SIGKILL');
}
