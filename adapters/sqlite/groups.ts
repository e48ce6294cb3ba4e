/**
 * Consumer groups on SQLite (Driver.groups): creating a group (one start for all its topics),
 * moving its cursor (seek), and its consumers' liveness (heartbeat, forget) for stats' live
 * consumer counts.
 */
import type { DriverGroups, StoreBound } from '../../bus/driver.js';
import { NotFoundError } from '../../bus/errors.js';
import type { SqliteStore } from './store.js';

export class Groups implements DriverGroups {
  constructor(private readonly st: SqliteStore) {}

  /** Driver.groups.create: see there. */
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

  /** Pending rows keep their owner for reclaiming; the consumers row only feeds stats (`topics`: not needed). */
  async forget(group: string, consumer: string): Promise<void> {
    await this.st.write(() => this.st.s.consumerForget.run(group, consumer));
    this.st.seen.delete(`${this.st.gid(group)}/${consumer}`);
  }

  /** Driver.groups.idleFor: since the newest `seen` of the group's consumers (one machine: one clock). */
  async idleFor(group: string): Promise<number | null> {
    const { seen } = this.st.s.groupLastSeen.get(group) as { seen: number | null };
    return seen === null ? null : Math.max(0, Date.now() - seen);
  }

  /** A read already counts as a heartbeat: at most one write a second per consumer either way. */
  async heartbeat(group: string, consumer: string): Promise<void> {
    const key = `${this.st.gid(group)}/${consumer}`;
    const now = Date.now();
    if ((this.st.seen.get(key) ?? 0) >= now - 1000) return;
    this.st.seen.set(key, now);
    await this.st.write(() => this.st.s.consumerSeen.run(group, consumer, now));
  }
}
