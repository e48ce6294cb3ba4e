/**
 * A keyed consumer's tenure: whether it owns its group now, and what that means for each delivery
 * it runs — the key's entry to enter before the handler, what to do with it after, standing by
 * while another consumer owns the group, and starting over when ownership is lost. The store side
 * (lease, state, commits) is the owner's (owner.ts); the scheduling is the consumer's (scheduler.ts),
 * reached through the narrow TenureHost below (wired in slots.ts).
 */
import type { Logger } from 'pino';
import type { KeyedStats } from '../contract-delivery.js';
import type { Delivery } from '../driver.js';
import type { Held } from '../held.js';
import type { StateStore } from '../state.js';
import { describe } from '../thrown.js';
import type { KeyEntry } from './cache.js';
import type { KeyOf } from './contract.js';
import { KeyOwner, type OwnerOptions } from './owner.js';

/** What a tenure needs of its consumer. */
export interface TenureHost {
  /** Deliveries started and not yet settled. */
  running(): number;
  closing(): boolean;
  /** Resolves at the consumer's next wake-up (a delivery settled, a slot freed, close). */
  idle(): Promise<void>;
  /** Waits `ms`, less if the consumer closes. */
  pause(ms: number): Promise<void>;
  /** A started delivery will not run after all: its slot is free. */
  unstart(): void;
  /** Forgets a delivery (its lane moves on). */
  drop(h: Held): void;
  /** Forgets everything held (deliveries, retries, lanes) without a store call. */
  forget(): void;
  /** Dispatches deliveries taken over from the previous owner and starts them. */
  take(ds: Delivery[]): void;
  /**
   * Right after acquiring the group: deliveries pending on a topic the group has but this consumer
   * did not read yet (its reply topic, keyed/requests.ts: made by a previous owner's first durable
   * request), taken on and claimed as the rest.
   */
  takeMore(): Promise<Delivery[]>;
  storeError(what: string, err: unknown): void;
}

export class KeyedTenure {
  readonly owner: KeyOwner;
  /** Grows when a tenure ends; deliveries of an earlier one are forgotten when their handler settles. */
  gen = 0;

  constructor(
    state: StateStore,
    private readonly o: OwnerOptions & { key: KeyOf },
    private readonly log: Logger,
    private readonly c: TenureHost,
  ) {
    this.owner = new KeyOwner(state, o, log, (why) => this.lose(why), (what, err) => this.c.storeError(what, err));
  }

  /** The owner's figures (the waits', steps' and requests' are the consumer's: Consumer.keyedStats). */
  stats(): Omit<KeyedStats, 'waiting' | 'waitsResumed' | 'waitsTimedOut' | 'stepsReplayed' | 'requestsReplayed'> {
    const o = this.owner;
    return { owner: o.owned, activeKeys: o.cache.size, stateBytes: o.cache.bytes(), evictions: o.cache.evictions, ...o.counters };
  }

  /**
   * The key's entry for a delivery about to run, or null when it must not run now (another
   * tenure's delivery, the lease lapsed, its state could not be loaded, or already applied: then
   * it is acknowledged without running). Frees the delivery's slot itself when it gives null.
   * Synchronous in the usual case (the lease held, the key's state in memory): a drain enters a
   * key per event, and a promise per event was measurable there.
   */
  enter(h: Held): KeyEntry | null | Promise<KeyEntry | null> {
    if (h.gen !== this.gen || !this.owner.owned) return this.confirm(h);
    const e = this.owner.enter(h.subject!);
    return e instanceof Promise ? this.load(h, e) : this.entered(h, e);
  }

  /** A lease this consumer could not confirm in time: confirm it now, or start over (lose). */
  private async confirm(h: Held): Promise<KeyEntry | null> {
    const owner = this.owner;
    if (h.gen === this.gen && !owner.owned && !(await owner.renew(true)) && h.gen === this.gen) this.lapsed();
    if (h.gen !== this.gen || !owner.owned) return this.entered(h, null);
    const e = owner.enter(h.subject!);
    return e instanceof Promise ? this.load(h, e) : this.entered(h, e);
  }

  /** The key's state is being loaded (with the other keys asked for in this tick). */
  private async load(h: Held, loading: Promise<KeyEntry>): Promise<KeyEntry | null> {
    let entry: KeyEntry | null = null;
    try {
      entry = await loading;
    } catch (err) {
      if (h.gen === this.gen) this.lose(`state of key ${JSON.stringify(h.subject)} could not be loaded: ${describe(err)}`);
    }
    return this.entered(h, entry);
  }

  private entered(h: Held, e: KeyEntry | null): KeyEntry | null {
    const owner = this.owner;
    let entry = e;
    if (entry !== null && h.gen !== this.gen) owner.leave(entry), (entry = null);
    if (entry !== null && owner.applied(entry, h.d)) {
      owner.counters.duplicates++;
      owner.leave(entry);
      owner.settle(null, h.d);
      entry = null;
      this.c.drop(h);
    }
    if (entry === null) this.c.unstart();
    return entry;
  }

  /** Whether `h` is a delivery of this tenure, the lease held. */
  current(h: Held): boolean {
    return h.gen === this.gen && this.owner.owned;
  }

  /**
   * After the handler: leaves the key and keeps (`ok`: accepted for the next commit, with the
   * delivery's ack) or rolls back what it changed. Returns `stale` for a delivery of an ended
   * tenure (forget it: the next owner has it), and the commit's refusal (state too large), if any.
   */
  settle(h: Held, entry: KeyEntry, ok: boolean, state: unknown, waits: string[] = []): { stale: boolean; refused: Error | null } {
    this.owner.leave(entry);
    if (h.gen !== this.gen) return { stale: true, refused: null };
    if (!ok) {
      this.owner.rollback(entry);
      return { stale: false, refused: null };
    }
    return { stale: false, refused: this.owner.accept(entry, h.d, state, waits) };
  }

  /**
   * Not owning the group: waits for the handlers of an ended tenure to settle (one handler per key
   * at a time, here too), then tries to take the group; the deliveries taken over from the
   * previous owner run first. A standby tries again every claimIdleMs/3 (at most every second).
   */
  async standBy(topics: () => string[], maxBytes: number): Promise<void> {
    const owner = this.owner;
    if (owner.epoch !== null) {
      if (!(await owner.renew(true))) this.lapsed();
      return;
    }
    while (this.c.running() > 0 && !this.c.closing()) await this.c.idle();
    if (this.c.closing()) return;
    let taken: Delivery[] | null = null;
    try {
      taken = await owner.acquire(topics(), maxBytes);
    } catch (err) {
      this.c.storeError('group lease', err);
      owner.reset();
    }
    if (taken === null) return this.c.pause(Math.min(1000, Math.floor(this.o.claimIdleMs / 3)));
    try {
      taken = [...taken, ...(await this.c.takeMore())];
    } catch (err) {
      // Left pending to the previous owner's consumer: claimed at the next takeover.
      this.c.storeError('reply topic takeover', err);
    }
    if (taken.length > 0) this.log.info({ group: this.o.group, consumer: this.o.consumer, epoch: owner.epoch, deliveries: taken.length }, 'took the keyed group over');
    this.c.take(taken);
  }

  /**
   * This tenure is over (the group changed hands, a commit was refused, a key changed outside it).
   * Everything held is forgotten without a store call: the store still has each delivery pending,
   * and the next owner (maybe this consumer again, through standBy) takes them over.
   */
  lose(why: string): void {
    this.log.warn(
      { group: this.o.group, consumer: this.o.consumer, epoch: this.owner.epoch },
      `keyed group ${this.o.group} starts over from the store: ${why}; its handlers running now are given up, and their events run again from their start on the group's owner (this consumer or another)`,
    );
    this.gen++;
    this.owner.reset();
    this.c.forget();
  }

  private lapsed(): void {
    this.lose(`lease of group ${this.o.group} lapsed and could not be kept (the store did not confirm it in claimIdleMs)`);
  }
}
