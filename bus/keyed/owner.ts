/**
 * A keyed consumer's side of the store (bus/state.ts): taking and keeping the group (one owner at a
 * time, an epoch per tenure), the state of the keys it runs (loaded in batches, cached, passivated),
 * and the commit of what finished deliveries changed. Commits are batched: every key touched since
 * the last commit is written once, with the acknowledgement of each delivery that touched it, in one
 * store call; one commit is in flight at a time, and deliveries keep running meanwhile (a key's next
 * event sees its state as accepted in memory). The consumer (consumer.ts, through tenure.ts) asks; this file decides
 * nothing about retries or dead letters.
 */
import type { Logger } from 'pino';
import type { Delivery } from '../driver.js';
import type { CloudEvent } from '../event.js';
import { OwnershipLostError, StateTooLargeError } from '../errors.js';
import { appliedKey, type StateStore, type StateWrite } from '../state.js';
import { describe, errForLog, isA } from '../thrown.js';
import { KeyCache, type KeyEntry } from './cache.js';
import type { KeyOf } from './contract.js';

/**
 * Deliveries settled and not yet committed, at most: past it a commit starts at once (not at the
 * next setImmediate, which an in-process store's read loop can hold off for a whole backlog) and
 * the consumer reads nothing more until it is stored, so a crash redelivers at most this many.
 */
export const MAX_UNCOMMITTED = 512;

/**
 * Stores whose acknowledgement is not atomic with the state (Redis Cluster) keep a removed key's
 * record this long as a tombstone (state `null`, its applied positions kept), so a redelivery after
 * "removed, acknowledgement lost" is still recognised; a tombstone reads as no state.
 */
export const TOMBSTONE_MS = 86_400_000;

export interface OwnerOptions {
  group: string;
  consumer: string;
  claimIdleMs: number;
  key: KeyOf;
  initialState: (key: string) => unknown;
  maxActiveKeys: number;
  maxStateBytes: number;
  stateTtlMs: number;
}

/** What the owner counts (exported as metrics by the runtime). */
export interface KeyedCounters {
  loads: number;
  conflicts: number;
  commits: number;
  takeovers: number;
  duplicates: number;
}

/** The event's key under `key`, or null when it has none (no subject; the function threw or gave no non-empty string). */
export function keyOf(key: KeyOf, event: CloudEvent): string | null {
  let k: unknown;
  try {
    k = key === 'subject' ? event.subject : key(event);
  } catch {
    return null;
  }
  return typeof k === 'string' && k !== '' ? k : null;
}

export class KeyOwner {
  readonly cache: KeyCache;
  readonly counters: KeyedCounters = { loads: 0, conflicts: 0, commits: 0, takeovers: 0, duplicates: 0 };
  /** The epoch of this tenure; null while standing by. */
  epoch: number | null = null;
  /** Grows at every reset: work begun in an earlier tenure is dropped when it completes. */
  private tenure = 0;
  /** After this (epoch ms) the lease may have passed to another consumer: no handler may start. */
  private leaseUntil = 0;
  private loading = new Map<string, Array<{ resolve: (e: KeyEntry) => void; reject: (err: unknown) => void }>>();
  private loadQueued = false;
  private dirty = new Set<KeyEntry>();
  /** Acknowledgements of deliveries that changed no state, carried by the next commit. */
  private plainAcks: Delivery[] = [];
  /** Acknowledgements waiting per key entry for the next commit. */
  private readonly acks = new Map<KeyEntry, Delivery[]>();
  private committing: Promise<void> | null = null;
  private commitQueued = false;
  /** Deliveries settled since the last commit started (see MAX_UNCOMMITTED). */
  uncommitted = 0;
  /** The deliveries of the commit in flight. */
  private inCommit: Delivery[] = [];
  /** Wait records (waits.ts) of deliveries accepted since the last commit: removed once it is stored. */
  private doneWaits: string[] = [];

  constructor(
    private readonly store: StateStore,
    private readonly o: OwnerOptions,
    private readonly log: Logger,
    /** The group changed hands or a key's record changed under this owner: the consumer starts over. */
    private readonly lost: (why: string) => void,
    /** A failed lease renewal, logged by the consumer (at most once per 10 s, none once it closed). */
    private readonly storeError: (what: string, err: unknown) => void = (what, err) => log.error({ group: o.group, err: errForLog(err) }, `store error during ${what}`),
  ) {
    this.cache = new KeyCache(o.maxActiveKeys);
  }

  /** The event's key, or null when it has none (a dead letter `no_key`). */
  keyOf(event: CloudEvent): string | null {
    return keyOf(this.o.key, event);
  }

  get owned(): boolean {
    return this.epoch !== null && Date.now() < this.leaseUntil;
  }

  /**
   * Tries once to take (or keep) the group. Resolves the deliveries taken over from the previous
   * owner when it acquired, [] when it renewed, null when another consumer holds it.
   */
  async acquire(topics: string[], maxBytes: number): Promise<Delivery[] | null> {
    const asked = Date.now();
    const own = await this.store.own(this.o.group, this.o.consumer, this.o.claimIdleMs);
    if (own === null) return null;
    this.leaseUntil = asked + this.o.claimIdleMs;
    if (!own.acquired && own.epoch === this.epoch) return [];
    this.epoch = own.epoch;
    this.cache.clear();
    this.counters.takeovers++;
    return this.store.takeOver(this.o.group, this.o.consumer, topics, maxBytes);
  }

  /**
   * Keeps the lease. Resolves true when this tenure goes on: renewed, or (the lease having run out
   * unnoticed by anyone) taken again by this consumer with the very next epoch, so nobody else held
   * the group between. False when another consumer has it (the consumer starts over: `lost`, unless
   * `quiet`) or the store could not be asked (the lease runs on until leaseUntil; `owned` turns false then).
   */
  async renew(quiet = false): Promise<boolean> {
    if (this.epoch === null) return false;
    const { epoch, tenure } = this;
    const asked = Date.now();
    let own: Awaited<ReturnType<StateStore['own']>>;
    try {
      own = await this.store.own(this.o.group, this.o.consumer, this.o.claimIdleMs);
    } catch (err) {
      this.storeError('group lease renewal', err);
      return false;
    }
    if (this.tenure !== tenure) return false;
    if (own !== null && (own.epoch === epoch || (own.acquired && own.epoch === epoch + 1))) {
      this.epoch = own.epoch;
      this.leaseUntil = asked + this.o.claimIdleMs;
      return true;
    }
    if (!quiet) this.lost(`group ${this.o.group} taken over by another consumer`);
    return false;
  }

  /** Drops everything of this tenure: cache, changes not committed, loads in flight. */
  reset(): void {
    this.epoch = null;
    this.tenure++;
    this.cache.clear();
    this.dirty.clear();
    this.acks.clear();
    this.plainAcks = [];
    this.uncommitted = 0;
    this.inCommit = [];
    this.doneWaits = [];
    for (const waiters of this.loading.values()) for (const w of waiters) w.reject(new OwnershipLostError('tenure ended'));
    this.loading.clear();
  }

  /** Gives the group up (closing consumer): a standby takes it at once. */
  async release(): Promise<void> {
    const epoch = this.epoch;
    this.epoch = null;
    if (epoch !== null) await this.store.disown(this.o.group, this.o.consumer, epoch).catch(() => {});
  }

  /** The key's entry, pinned for one delivery: from memory, or loaded with the other keys asked for in this tick. */
  enter(key: string): KeyEntry | Promise<KeyEntry> {
    const e = this.cache.get(key);
    if (e !== undefined && e.expiresAt > 0 && Date.now() >= e.expiresAt && e.pins === 0 && !e.dirty) {
      // Its record expired in the store (stateTtlMs): the key has no state now, whatever memory holds.
      this.cache.delete(key);
    } else if (e !== undefined) {
      e.pins++;
      return e;
    }
    return new Promise<KeyEntry>((resolve, reject) => {
      const waiters = this.loading.get(key);
      const w = { resolve: (x: KeyEntry) => (x.pins++, resolve(x)), reject };
      if (waiters) return void waiters.push(w);
      this.loading.set(key, [w]);
      if (!this.loadQueued) {
        this.loadQueued = true;
        queueMicrotask(() => void this.loadQueuedKeys());
      }
    });
  }

  private async loadQueuedKeys(): Promise<void> {
    this.loadQueued = false;
    const batch = this.loading;
    this.loading = new Map();
    const tenure = this.tenure;
    try {
      const records = await this.store.load(this.o.group, [...batch.keys()]);
      this.counters.loads += batch.size;
      for (const [key, waiters] of batch) {
        if (this.tenure !== tenure) throw new OwnershipLostError('tenure ended');
        const r = records.get(key);
        let entry: KeyEntry;
        if (r !== undefined && r.state !== 'null') {
          const expiresAt = this.o.stateTtlMs > 0 ? r.updatedAt + this.o.stateTtlMs : 0;
          entry = { key, version: r.version, json: r.state, value: JSON.parse(r.state), applied: r.applied, appliedDelta: null, pins: 0, dirty: false, expiresAt, noExpiry: false, inserted: 0 };
        } else {
          // No record, or a tombstone (TOMBSTONE_MS): the initial state, at the record's version.
          const value = this.o.initialState(key) ?? null;
          entry = { key, version: r?.version ?? 0, json: JSON.stringify(value), value, applied: r?.applied ?? {}, appliedDelta: null, pins: 0, dirty: false, expiresAt: 0, noExpiry: r === undefined, inserted: 0 };
        }
        entry = this.cache.put(entry);
        for (const w of waiters) w.resolve(entry);
      }
    } catch (err) {
      for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
    }
  }

  /** A delivery of the key left the consumer (settled, dead-lettered, released). */
  leave(e: KeyEntry): void {
    e.pins--;
  }

  /** True when the store already applied this delivery (non-atomic stores: state written, ack lost). */
  applied(e: KeyEntry, d: Delivery): boolean {
    if (this.store.atomicAck) return false;
    const at = e.applied[appliedKey(d)];
    return at !== undefined && this.store.comparePositions(d.position, at) <= 0;
  }

  /**
   * The handler resolved with `value` as the key's state: accepted (to be committed with `d`'s
   * acknowledgement), or an error when it cannot be stored (the key keeps its state). `waits`: the
   * ids of the handler run's wait records, removed once the commit is stored.
   */
  accept(e: KeyEntry, d: Delivery, value: unknown, waits: string[] = []): Error | null {
    let json: string;
    try {
      json = JSON.stringify(value ?? null);
    } catch (err) {
      this.rollback(e);
      return new StateTooLargeError(`state of key ${JSON.stringify(e.key)} is not JSON-serialisable: ${describe(err)}`);
    }
    if (json.length * 3 > this.o.maxStateBytes && Buffer.byteLength(json) > this.o.maxStateBytes) {
      this.rollback(e);
      return new StateTooLargeError(`state of key ${JSON.stringify(e.key)} is ${Buffer.byteLength(json)} bytes as JSON, over maxStateBytes ${this.o.maxStateBytes}`);
    }
    e.removed = json === 'null';
    if (e.removed) {
      const initial = this.o.initialState(e.key) ?? null;
      e.json = JSON.stringify(initial);
      e.value = initial;
    } else {
      e.json = json;
      e.value = value;
    }
    if (!this.store.atomicAck) {
      const k = appliedKey(d);
      e.applied[k] = d.position;
      (e.appliedDelta ??= {})[k] = d.position;
    }
    if (waits.length > 0) this.doneWaits.push(...waits);
    this.settle(e, d);
    return null;
  }

  /** The handler failed: its changes to the live value are undone. */
  rollback(e: KeyEntry): void {
    e.value = JSON.parse(e.json);
  }

  /** `d` is done with no change of state to write (a duplicate): acknowledged by the next commit. */
  settle(e: KeyEntry | null, d: Delivery): void {
    this.uncommitted++;
    if (e === null) this.plainAcks.push(d);
    else {
      e.dirty = true;
      this.dirty.add(e);
      const a = this.acks.get(e);
      if (a) a.push(d);
      else this.acks.set(e, [d]);
    }
    this.scheduleCommit();
  }

  private scheduleCommit(): void {
    if (this.committing) return;
    if (this.uncommitted >= MAX_UNCOMMITTED) return this.startCommit();
    if (this.commitQueued) return;
    this.commitQueued = true;
    setImmediate(() => {
      if (this.commitQueued && !this.committing) this.startCommit();
    });
  }

  private startCommit(): void {
    this.commitQueued = false;
    this.committing = this.commit().finally(() => {
      this.committing = null;
      if (this.dirty.size > 0 || this.plainAcks.length > 0) this.scheduleCommit();
    });
  }

  /**
   * Deliveries settled and not yet acknowledged (waiting for their commit, or in it): their leases are
   * renewed with the held ones, so a slow commit never lets them expire and run a second time.
   */
  unacknowledged(): Delivery[] {
    const out = [...this.plainAcks, ...this.inCommit];
    for (const a of this.acks.values()) out.push(...a);
    return out;
  }

  /** Resolves when the commit in flight (if any) is done: the read loop waits here past MAX_UNCOMMITTED. */
  async committed(): Promise<void> {
    if (this.committing) await this.committing;
    else if (this.uncommitted >= MAX_UNCOMMITTED) this.startCommit();
  }

  /** Commits everything accepted so far; resolves when it is stored (or failed and was handed on). */
  async flush(): Promise<void> {
    while (this.committing || this.commitQueued || this.dirty.size > 0 || this.plainAcks.length > 0) {
      if (this.committing) await this.committing;
      else {
        this.commitQueued = false;
        this.committing = this.commit().finally(() => (this.committing = null));
      }
      if (this.epoch === null) return;
    }
  }

  private async commit(): Promise<void> {
    const { epoch, tenure } = this;
    if (epoch === null || (this.dirty.size === 0 && this.plainAcks.length === 0)) return;
    const entries = [...this.dirty];
    this.dirty.clear();
    const writes: StateWrite[] = entries.map((e) => ({
      key: e.key,
      expectVersion: e.version,
      state: e.removed ? (this.store.atomicAck ? null : 'null') : e.json,
      applied: e.appliedDelta ?? {},
      ttlMs: e.removed && !this.store.atomicAck ? TOMBSTONE_MS : this.o.stateTtlMs,
      noExpiry: e.noExpiry,
      ack: this.acks.get(e) ?? [],
    }));
    for (const e of entries) {
      this.acks.delete(e);
      e.appliedDelta = null;
      e.dirty = false;
    }
    const plain = this.plainAcks;
    this.plainAcks = [];
    this.uncommitted = 0;
    this.inCommit = plain.concat(...writes.map((w) => w.ack));
    const waits = this.doneWaits;
    this.doneWaits = [];
    const started = Date.now();
    try {
      const r = await this.store.commit(this.o.group, this.o.consumer, epoch, writes, plain);
      this.counters.commits++;
      this.inCommit = [];
      // Their deliveries are acknowledged: nothing runs those handlers again. A failure (or a
      // conflict, whose deliveries run again) leaves them to expire.
      if (waits.length > 0 && r.conflicts.length === 0) this.store.removeWaits(this.o.group, waits).catch((err) => this.log.warn({ group: this.o.group, err: errForLog(err) }, 'wait records not removed (they expire)'));
      if (this.tenure !== tenure) return;
      const ttl = this.o.stateTtlMs;
      for (let i = 0; i < entries.length; i++) {
        const kept = writes[i].state !== null;
        entries[i].version = kept ? writes[i].expectVersion + 1 : 0;
        entries[i].expiresAt = kept && ttl > 0 ? started + ttl : 0;
        entries[i].noExpiry = !kept || writes[i].ttlMs === 0;
      }
      if (r.conflicts.length > 0) {
        this.counters.conflicts += r.conflicts.length;
        return this.lost(`state of ${r.conflicts.length} key(s) changed outside this owner (e.g. ${JSON.stringify(r.conflicts[0])}, removed by agentbus state rm?)`);
      }
      this.cache.evict();
    } catch (err) {
      this.inCommit = [];
      if (this.tenure !== tenure) return;
      // Lost, or not known to be stored: start over from what the store has (uncommitted deliveries are delivered again).
      this.lost(isA(err, OwnershipLostError) ? `group ${this.o.group} taken over by another consumer` : `commit failed: ${describe(err)}`);
    }
  }
}
