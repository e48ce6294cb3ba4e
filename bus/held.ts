// The deliveries one consumer holds, from read to ack, dead letter or release: their leases are
// renewed together, and on close those not running go back to the group.
import type { Delivery, Driver } from './driver.js';
import type { ResolvedSubscribeOptions } from './options.js';

export interface Held {
  d: Delivery;
  /** Its lane (orderBy 'subject': the subject; keyed: the key), once admitted. */
  subject: string | undefined;
  /** Keyed subscriptions: the consumer's tenure it was read in (KeyedTenure.lose starts a new one). */
  gen?: number;
  /** new: just read; queued: behind its subject's lane; running: started, in the handler or settling; waiting: for a retry. */
  state: 'new' | 'queued' | 'running' | 'waiting';
  /** The pending retry of a delivery `waiting`. */
  timer?: NodeJS.Timeout | undefined;
  /** Holdings' list: the deliveries held before and after this one (null at the ends or when not held). */
  prev?: Held | null;
  next?: Held | null;
  /** Whether Holdings holds it. */
  held?: boolean;
  /** Its handler's call was marked as answering the request it carries (requests.ts answering): its dead letter fails the requester. */
  answers?: boolean;
}

/**
 * The deliveries held, in the order they were added, as a list linked through the Held records: an
 * add and a delete per delivery cost two or three field writes (a Set cost a hash lookup each, and
 * grew and shrank its table as deliveries came and went).
 */
export class Holdings {
  private first: Held | null = null;
  private last: Held | null = null;
  private count = 0;

  constructor(
    private readonly driver: Driver,
    private readonly o: Pick<ResolvedSubscribeOptions, 'group' | 'consumer' | 'claimIdleMs'>,
    private readonly storeError: (what: string, err: unknown) => void,
  ) {}

  /** Holds `h` (again: no change). */
  add(h: Held): void {
    if (h.held === true) return;
    h.held = true;
    h.prev = this.last;
    h.next = null;
    if (this.last === null) this.first = h;
    else this.last.next = h;
    this.last = h;
    this.count++;
  }

  /** Lets go of `h` (not held: no change). */
  delete(h: Held): void {
    if (h.held !== true) return;
    h.held = false;
    const { prev, next } = h;
    if (prev == null) this.first = next ?? null;
    else prev.next = next;
    if (next == null) this.last = prev ?? null;
    else next.prev = prev;
    h.prev = h.next = null;
    this.count--;
  }

  /** Every delivery held, oldest first. */
  private all(): Held[] {
    const out: Held[] = [];
    for (let h = this.first; h !== null; h = h.next ?? null) out.push(h);
    return out;
  }

  /** Extends every lease held (a handler running long is never redelivered under itself). */
  async renew(also: Delivery[] = []): Promise<void> {
    if (this.count === 0 && also.length === 0) return;
    const ds = this.all().map((h) => h.d).concat(also);
    await this.driver.leases.renew(this.o.group, this.o.consumer, ds, this.o.claimIdleMs).catch((err) => this.storeError('renew', err));
  }

  /** Those not started (queued behind their subject) or waiting for a retry. */
  notRunning(): Held[] {
    return this.all().filter((h) => h.state !== 'running');
  }

  /** Forgets every delivery without a store call (a keyed owner's tenure ended: the next owner takes them over). */
  clear(): void {
    this.cancelRetries();
    for (const h of this.all()) this.delete(h);
  }

  cancelRetries(): void {
    for (let h = this.first; h !== null; h = h.next ?? null) if (h.timer) clearTimeout(h.timer);
  }

  /**
   * Gives deliveries back to the group at once, their attempt uncounted: those never started, and
   * those whose handler is parked in ctx.waitFor (a stop is not a failed attempt); one waiting for
   * its retry keeps the failed attempt counted.
   */
  async release(hs: Held[]): Promise<void> {
    if (hs.length === 0) return;
    const ds = hs.map((h) => (h.state === 'waiting' ? h.d : { ...h.d, attempts: h.d.attempts - 1 }));
    await this.driver.leases.release(this.o.group, this.o.consumer, ds).catch((err) => this.storeError('release', err));
    for (const h of hs) this.delete(h);
  }
}
