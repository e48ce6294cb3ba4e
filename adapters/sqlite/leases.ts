/**
 * What happens to the deliveries a consumer holds on SQLite (Driver.leases): its pending rows
 * acknowledged (deleted), their lease renewed, released back to the group, or one more attempt counted.
 */
import type { Delivery, DriverLeases } from '../../bus/driver.js';
import type { SqliteStore } from './store.js';

export class Leases implements DriverLeases {
  constructor(private readonly st: SqliteStore) {}

  async ack(group: string, ds: Delivery[]): Promise<void> {
    const gid = this.st.gid(group);
    await this.st.eachTx(ds, (d) => this.st.s.pendingDelete.run(gid, Number(d.position)));
  }

  async renew(group: string, consumer: string, ds: Delivery[], leaseMs: number): Promise<void> {
    const deadline = Date.now() + leaseMs;
    const gid = this.st.gid(group);
    await this.st.eachTx(ds, (d) => this.st.s.renew.run(deadline, gid, Number(d.position), consumer));
  }

  async release(group: string, consumer: string, ds: Delivery[]): Promise<void> {
    const gid = this.st.gid(group);
    await this.st.eachTx(ds, (d) => this.st.s.release.run(d.attempts, gid, Number(d.position), consumer));
    this.st.changed();
  }

  async countAttempt(group: string, d: Delivery): Promise<void> {
    const gid = this.st.gid(group);
    // Set, not incremented: a handler parked in a wait held the stored count one down (setAttempts).
    await this.st.write(() => this.st.s.countAttempt.run(d.attempts + 1, gid, Number(d.position)));
  }

  async setAttempts(group: string, consumer: string, d: Delivery, attempts: number): Promise<void> {
    const gid = this.st.gid(group);
    await this.st.write(() => this.st.s.setAttempts.run(attempts, gid, Number(d.position), consumer));
  }
}
