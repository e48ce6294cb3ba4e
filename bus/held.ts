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
}

export class Holdings {
  private readonly all = new Set<Held>();

  constructor(
    private readonly driver: Driver,
    private readonly o: Pick<ResolvedSubscribeOptions, 'group' | 'consumer' | 'claimIdleMs'>,
    private readonly storeError: (what: string, err: unknown) => void,
  ) {}

  add(h: Held): void {
    this.all.add(h);
  }

  delete(h: Held): void {
    this.all.delete(h);
  }

  /** Extends every lease held (a handler running long is never redelivered under itself). */
  async renew(also: Delivery[] = []): Promise<void> {
    if (this.all.size === 0 && also.length === 0) return;
    const ds = [...this.all].map((h) => h.d).concat(also);
    await this.driver.leases.renew(this.o.group, this.o.consumer, ds, this.o.claimIdleMs).catch((err) => this.storeError('renew', err));
  }

  /** Those not started (queued behind their subject) or waiting for a retry. */
  notRunning(): Held[] {
    return [...this.all].filter((h) => h.state !== 'running');
  }

  /** Forgets every delivery without a store call (a keyed owner's tenure ended: the next owner takes them over). */
  clear(): void {
    this.cancelRetries();
    this.all.clear();
  }

  cancelRetries(): void {
    for (const h of this.all) if (h.timer) clearTimeout(h.timer);
  }

  /** Gives deliveries back to the group at once; those never started keep their attempt uncounted. */
  async release(hs: Held[]): Promise<void> {
    if (hs.length === 0) return;
    const ds = hs.map((h) => (h.state === 'waiting' ? h.d : { ...h.d, attempts: h.d.attempts - 1 }));
    await this.driver.leases.release(this.o.group, this.o.consumer, ds).catch((err) => this.storeError('release', err));
    for (const h of hs) this.all.delete(h);
  }
}
