/**
 * Consumer groups on SQLite and the deliveries they hold: creating a group (one start for all its
 * topics), moving its cursor (seek), and acknowledging, renewing, releasing or counting an attempt
 * of the pending rows a consumer holds.
 */
import type { Delivery, StoreBound } from '../../bus/driver.js';
import { NotFoundError } from '../../bus/errors.js';
import type { SqliteStore } from './store.js';

export class Groups {
  constructor(private readonly st: SqliteStore) {}

  /** Driver.createGroup: see there. */
  async create(group: string, topics: string[], from: 'latest' | 'earliest'): Promise<number> {
    const { s } = this.st;
    return this.st.write(() => {
      const created = s.groupCreate.run(group, from === 'earliest' ? 0 : this.st.maxSeq()).changes === 1;
      const { start } = s.groupGet.get(group) as { start: number };
      let skipped = 0;
      for (const t of topics) {
        const cursor = s.cursorCreate.run(group, t, start).changes === 1;
        // Counted on the topic index, once, when a group is made at latest.
        if (created && cursor && from === 'latest') skipped += (s.countUpTo.get(t, start) as { n: number }).n;
      }
      return skipped;
    });
  }

  async seek(group: string, topic: string, from: StoreBound | 'earliest'): Promise<void> {
    const { s } = this.st;
    const at = from !== 'earliest' && 'position' in from ? this.st.seqOf(from.position, 'from') : null; // bad input before store errors
    await this.st.write(() => {
      if (s.cursorGet.get(group, topic) === undefined) {
        throw new NotFoundError('NOT_FOUND', `group ${JSON.stringify(group)} has never subscribed to ${JSON.stringify(topic)}`);
      }
      let next: number;
      if (from === 'earliest') next = 1;
      else if ('position' in from) next = at!;
      else next = (s.firstAtTime.get(topic, from.time) as { seq: number | null }).seq ?? this.st.maxSeq() + 1;
      s.cursorSet.run(next - 1, group, topic);
    });
    this.st.changed();
  }

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
    await this.st.write(() => this.st.s.countAttempt.run(gid, Number(d.position)));
  }
}
