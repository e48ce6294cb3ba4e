/**
 * What happens to deliveries a consumer holds on Redis (Driver.leases): acknowledged (XACK), their
 * lease renewed, released back to the group, or one more attempt counted (the delivery count is the
 * attempt count).
 */
import type { Delivery, DriverLeases } from '../../bus/driver.js';
import { execAll, type RedisStore } from './client.js';
import { byKey, keyOf } from './delivery.js';
import { releaseLease, renewLease, setAttempts } from './scripts/lease.js';

/** Idle time set on a released entry: far past any claimIdleMs, so the next XAUTOCLAIM takes it. */
const RELEASED_IDLE_MS = 2 ** 40;

export class Leases implements DriverLeases {
  constructor(private readonly s: RedisStore) {}

  /** One XACK per stream key; several keys go in one batch. */
  async ack(group: string, ds: Delivery[]): Promise<void> {
    const keys = byKey(ds);
    if (keys.size === 1) {
      const [[key, ids]] = keys;
      await this.s.cmd.xack(key, group, ...ids);
      return;
    }
    const p = this.s.batch();
    for (const [key, ids] of keys) p.xack(key, group, ...ids);
    await execAll(p);
  }

  /** Renews what `consumer` still holds: its idle time restarts, and a lease ends when readers' XAUTOCLAIM finds it idle for ReadRequest.leaseMs (so renew's own leaseMs is not needed). */
  async renew(group: string, consumer: string, ds: Delivery[]): Promise<void> {
    const p = this.s.batch();
    for (const [key, ids] of byKey(ds)) renewLease.send(p, key, group, consumer, ids);
    await execAll(p);
  }

  async release(group: string, consumer: string, ds: Delivery[]): Promise<void> {
    // One script call per delivery (each keeps its own attempt count), all in one round trip.
    const p = this.s.batch();
    for (const d of ds) releaseLease.send(p, keyOf(d), group, consumer, RELEASED_IDLE_MS, d.attempts, d.position);
    await execAll(p);
  }

  async countAttempt(group: string, d: Delivery): Promise<void> {
    // The delivery count is the attempt count; set it, owned by whoever holds the entry now.
    const owner = await this.owner(d, group);
    if (owner !== null) await setAttempts.call(this.s.cmd, keyOf(d), group, owner, d.attempts + 1, d.position);
  }

  async setAttempts(group: string, consumer: string, d: Delivery, attempts: number): Promise<void> {
    await setAttempts.call(this.s.cmd, keyOf(d), group, consumer, attempts, d.position);
  }

  private async owner(d: Delivery, group: string): Promise<string | null> {
    const p = (await this.s.cmd.xpending(keyOf(d), group, d.position, d.position, 1)) as [string, string][];
    return p[0]?.[1] ?? null;
  }
}
