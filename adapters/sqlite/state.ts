/**
 * Keyed agents' store on SQLite (bus/state.ts): who owns each keyed group, and each key's state,
 * committed with the acknowledgement of the deliveries that changed it.
 *
 * Layout (schema version 3, DDL in schema.ts, every statement in statements.ts prepareState):
 * - `group_owner(grp PRIMARY KEY, consumer, epoch, expires_at)`: one row per keyed group, kept once
 *   the group was ever owned. A lease is `expires_at` (ms); giving the group up (disown) sets
 *   `consumer` NULL and `expires_at` 0 but keeps the row, so the epoch only grows: it survives
 *   every lease, expired or given up, and is never reused (a deleted row would restart it at 1 and
 *   let a stale owner's commit through). One small row per group, never deleted.
 * - `agent_state(grp, key, version, state, applied, updated_at, expires_at, PRIMARY KEY(grp, key))
 *   WITHOUT ROWID`: one row per key with a record; the row is its own primary-key index, so a load
 *   or a commit of a key is one B-tree lookup. `applied` is a JSON object (last position per source
 *   stream), stored for the contract's sake: commits acknowledge atomically, so it is never consulted.
 *   `expires_at` (ms, NULL: no TTL) makes a record invisible to load/get/list/commit from then on;
 *   the housekeeping trim (admin.ts) deletes it, found through the partial index
 *   `agent_state_by_expiry` on the expiring rows only.
 *
 * - `agent_wait(grp, id, type, key, deadline, matched, expires_at, PRIMARY KEY(grp, id)) WITHOUT ROWID`
 *   (version 6): keyed handlers' durable waits (bus/keyed/waits.ts); created once (the first
 *   deadline stays), `matched` set once, deleted after their delivery's commit or by housekeeping
 *   (admin.ts) past `expires_at`.
 *
 * A commit is one `BEGIN IMMEDIATE` transaction: the epoch check, each key's version check and
 * write, and the acknowledgements (the `pending` rows deleted, as the ack path does): the state
 * and its acknowledgement are written together or not at all, so `atomicAck` is true. SQLite is
 * in the process, so "one round trip" is one transaction of prepared statements (a load of many
 * keys is one statement: the keys as a JSON array).
 */
import type { Delivery } from '../../bus/driver.js';
import { OwnershipLostError } from '../../bus/errors.js';
import { killAfterStateWrite, type CommitResult, type Ownership, type StateRecord, type StateStore, type StateWrite, type WaitListing, type WaitRecord } from '../../bus/state.js';
import { delivery } from './read.js';
import type { OwnerRow, PendingRow, StateRow, StateStatements, Taken } from './statements.js';
import type { SqliteStore } from './store.js';

export class SqliteState implements StateStore {
  readonly atomicAck = true;

  constructor(private readonly st: SqliteStore) {}

  /** The state statements for a write: a writable file always has the tables (the schema was migrated on open). */
  private get ss(): StateStatements {
    return this.st.stateStatements()!;
  }

  /**
   * A lease that ran out counts as free for everyone, its last holder too: taking it again grows
   * the epoch and reports `acquired` (on Redis the owner record is gone by then as well).
   */
  async own(group: string, consumer: string, leaseMs: number): Promise<Ownership | null> {
    return this.st.write(() => {
      const now = Date.now();
      const o = this.ss.ownerGet.get(group) as OwnerRow | undefined;
      if (o === undefined) {
        this.ss.ownerInsert.run(group, consumer, now + leaseMs);
        return { epoch: 1, acquired: true };
      }
      if (o.consumer !== null && o.expires_at > now) {
        if (o.consumer !== consumer) return null;
        this.ss.ownerRenew.run(now + leaseMs, group);
        return { epoch: o.epoch, acquired: false };
      }
      this.ss.ownerTake.run(consumer, now + leaseMs, group);
      return { epoch: o.epoch + 1, acquired: true };
    });
  }

  async disown(group: string, consumer: string, epoch: number): Promise<void> {
    await this.st.write(() => this.ss.ownerDrop.run(group, consumer, epoch));
  }

  /**
   * The claimed deliveries are leased until the caller's ownership lease ends (own()'s `leaseMs`,
   * the lease the keyed consumer reads with), so its own read() does not take them again meanwhile;
   * renewing them works as after a read. Only the owner under an unexpired lease may take over:
   * anyone else is refused with OwnershipLostError and nothing is claimed (a stale owner must not
   * pull the deliveries away from the new one).
   */
  async takeOver(group: string, consumer: string, topics: string[], maxBytes: number): Promise<Delivery[]> {
    const rows = await this.st.write(() => {
      const now = Date.now();
      const o = this.ss.ownerGet.get(group) as OwnerRow | undefined;
      if (o === undefined || o.consumer !== consumer || o.expires_at <= now) {
        throw new OwnershipLostError(`${consumer} cannot take over group ${JSON.stringify(group)}: ${ownerText(o, now)}`);
      }
      const out: Taken[] = [];
      if (topics.length === 0) return out;
      const gid = this.st.gid(group);
      for (const r of this.ss.pendingOfGroup.all({ gid, topics: JSON.stringify(topics), max: maxBytes }) as PendingRow[]) {
        if (r.body === null) {
          this.st.s.pendingDelete.run(gid, r.seq); // trimmed while pending: cleared, as read does
          continue;
        }
        this.st.s.claim.run(consumer, o.expires_at, gid, r.seq);
        out.push({ topic: r.topic, seq: r.seq, attempts: r.attempts + 1, body: r.body, size: r.size });
      }
      return out;
    });
    // Decoded once the lock is released, by the read path's own decoder.
    return rows.map((r) => delivery(r.topic, r.seq, r.attempts, r.body, r.size, maxBytes));
  }

  async load(group: string, keys: string[]): Promise<Map<string, StateRecord>> {
    const out = new Map<string, StateRecord>();
    const ss = this.st.stateStatements();
    if (keys.length === 0 || ss === null) return out;
    for (const r of ss.stateLoad.all({ grp: group, keys: JSON.stringify(keys), now: Date.now() }) as StateRow[]) out.set(r.key, record(r));
    return out;
  }

  /**
   * The epoch check accepts the owner whose lease ran out while nobody took the group (the epoch is
   * still its own, so no other consumer can have written meanwhile). `applied` positions are merged
   * even though they are never consulted here (atomicAck), a position never moving backwards.
   * The crash hook (killAfterStateWrite) counts commits that wrote at least one record and fires
   * once the transaction is committed: state and acknowledgement are then both stored.
   */
  async commit(group: string, consumer: string, epoch: number, writes: StateWrite[], ack: Delivery[]): Promise<CommitResult> {
    const { conflicts, wrote } = await this.st.write(() => {
      const now = Date.now();
      const ss = this.ss;
      const o = ss.ownerGet.get(group) as OwnerRow | undefined;
      if (o === undefined || o.consumer !== consumer || o.epoch !== epoch) {
        throw new OwnershipLostError(`commit of ${consumer} under epoch ${epoch} refused, nothing written or acknowledged: group ${JSON.stringify(group)} ${ownerText(o, now)}`);
      }
      let gid: number | undefined;
      const del = (d: Delivery) => this.st.s.pendingDelete.run((gid ??= this.st.gid(group)), Number(d.position));
      const conflicts: string[] = [];
      let wrote = 0;
      for (const w of writes) {
        const row = ss.stateVersion.get({ grp: group, key: w.key, now }) as { version: number; applied: string } | undefined;
        if ((row?.version ?? 0) !== w.expectVersion) {
          conflicts.push(w.key);
          continue;
        }
        if (w.state === null) ss.stateDelete.run({ grp: group, key: w.key });
        else {
          const applied = this.merge(row?.applied, w.applied);
          ss.statePut.run({ grp: group, key: w.key, version: w.expectVersion + 1, state: w.state, applied, now, expires: w.ttlMs > 0 ? now + w.ttlMs : null });
        }
        wrote++;
        for (const d of w.ack) del(d);
      }
      for (const d of ack) del(d);
      return { conflicts, wrote };
    });
    if (wrote > 0) killAfterStateWrite(); // crash tests: state and acknowledgement are both stored now
    return { conflicts };
  }

  async get(group: string, key: string): Promise<StateRecord | null> {
    const r = this.st.stateStatements()?.stateGet.get({ grp: group, key, now: Date.now() }) as StateRow | undefined;
    return r ? record(r) : null;
  }

  async list(group: string, q: { after?: string | undefined; limit: number }): Promise<Array<{ key: string; version: number; bytes: number; updatedAt: number }>> {
    const ss = this.st.stateStatements();
    if (ss === null) return [];
    const args = { grp: group, limit: q.limit, now: Date.now() };
    const rows = (q.after === undefined ? ss.stateList.all(args) : ss.stateListAfter.all({ ...args, after: q.after })) as Array<{ key: string; version: number; bytes: number; updated_at: number }>;
    return rows.map((r) => ({ key: r.key, version: r.version, bytes: r.bytes, updatedAt: r.updated_at }));
  }

  /**
   * Erases for real: the key's state row and its wait and step rows (`agent_wait`) are deleted in
   * one transaction with `secure_delete` on, so SQLite overwrites their bytes with zeros, and a
   * checkpoint then moves those pages into the file and empties the WAL of older copies (a reader
   * holding an old snapshot can delay that to the next checkpoint). An expired row not yet trimmed
   * is erased too but does not make its key count (it no longer existed for readers).
   */
  async remove(group: string, keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const db = this.st.db;
    let n = 0;
    db.pragma('secure_delete = ON');
    try {
      await this.st.write(() => {
        n = 0;
        const now = Date.now();
        const ws = this.st.waitStatements()!;
        const live = (rows: unknown[]) => (rows as { live: number }[]).some((r) => r.live === 1);
        for (const key of keys) {
          const state = live(this.ss.stateRemove.all({ grp: group, key, now }));
          const records = live(ws.waitRemoveKey.all({ grp: group, key, now }));
          if (state || records) n++;
        }
      });
    } finally {
      db.pragma('secure_delete = OFF');
    }
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // busy: the next automatic checkpoint moves the zeroed pages in
    }
    return n;
  }

  /** Groups with a live record, or owned now (an expired or given-up lease counts as no owner); in name order. */
  async groups(): Promise<string[]> {
    const ss = this.st.stateStatements();
    return ss === null ? [] : (ss.stateGroups.all({ now: Date.now() }) as { grp: string }[]).map((r) => r.grp);
  }

  async openWait(group: string, id: string, wait: { type: string; key: string; deadline: number }, ttlMs: number): Promise<WaitRecord> {
    return this.st.write(() => {
      const ws = this.st.waitStatements()!;
      ws.waitOpen.run({ grp: group, id, type: wait.type, key: wait.key, deadline: wait.deadline, expires: wait.deadline + ttlMs });
      return ws.waitGet.get({ grp: group, id }) as WaitRecord;
    });
  }

  async matchWait(group: string, id: string, event: string): Promise<string | null> {
    return this.st.write(() => {
      const ws = this.st.waitStatements()!;
      ws.waitMatch.run({ grp: group, id, matched: event });
      return (ws.waitGet.get({ grp: group, id }) as WaitRecord | undefined)?.matched ?? null;
    });
  }

  async listWaits(group: string, q: { key?: string | undefined; limit: number; steps: boolean }): Promise<WaitListing[]> {
    const ws = this.st.waitStatements();
    if (ws === null) return [];
    const rows = ws.waitList.all({ grp: group, key: q.key ?? null, now: Date.now(), limit: q.limit, steps: q.steps ? 1 : 0 }) as Array<Omit<WaitListing, 'matched'> & { matched: number }>;
    return rows.map((r) => ({ ...r, matched: r.matched === 1 }));
  }

  async removeWaits(group: string, ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.st.write(() => {
      const ws = this.st.waitStatements()!;
      let n = 0;
      for (const id of ids) n += ws.waitRemove.run({ grp: group, id }).changes;
      return n;
    });
  }

  /** SQLite positions are sequence numbers as decimal digits, without leading zeros. */
  comparePositions(a: string, b: string): number {
    return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
  }

  /** A record's applied positions (JSON) with `add` merged in, keeping the later position per stream. */
  private merge(stored: string | undefined, add: Record<string, string>): string {
    const keys = Object.keys(add);
    if (keys.length === 0) return stored ?? '{}';
    const out = (stored === undefined ? {} : JSON.parse(stored)) as Record<string, string>;
    for (const k of keys) if (out[k] === undefined || this.comparePositions(add[k], out[k]) > 0) out[k] = add[k];
    return JSON.stringify(out);
  }
}

function record(r: StateRow): StateRecord {
  return { version: r.version, state: r.state, applied: r.applied === '{}' ? {} : (JSON.parse(r.applied) as Record<string, string>), updatedAt: r.updated_at };
}

function ownerText(o: OwnerRow | undefined, now: number): string {
  if (o === undefined) return 'has never been owned';
  if (o.consumer === null || o.expires_at <= now) return `has no owner now (epoch ${o.epoch})`;
  return `is owned by ${o.consumer} under epoch ${o.epoch}`;
}
