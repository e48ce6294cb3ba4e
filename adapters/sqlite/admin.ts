/**
 * Administration of the SQLite store (Driver.admin): stats, retention (trim), housekeeping (expired
 * dedup markers, consumers gone) and ping. health() is added by pressure.ts.
 */
import type { TopicStats } from '../../bus/contract.js';
import { CONSUMER_ALIVE_MS, type DriverAdmin } from '../../bus/driver.js';
import type { SqliteStore } from './store.js';

const MAX = Number.MAX_SAFE_INTEGER;

export class Admin implements DriverAdmin {
  health?: DriverAdmin['health'];

  constructor(
    private readonly st: SqliteStore,
    /** A topic dropped (dropTopic): the driver's list of topics forgets it now. */
    private readonly dropped: (topic: string) => void = () => {},
  ) {}

  /**
   * One aggregate query per table, grouped by topic and group, then joined here: proportional to the
   * rows counted, not to topics x groups. Lag is counted per cursor over the topic index (what is
   * past the cursor). Consumers are those seen within CONSUMER_ALIVE_MS, the same for every topic of
   * a group (a consumer reads all of them).
   */
  async stats(): Promise<TopicStats[]> {
    const { s } = this.st;
    return this.st.snapshot(() => {
      const count = (rows: { k: string; n: number }[]) => new Map(rows.map((r) => [r.k, r.n]));
      const lengths = count(s.lengths.all() as { k: string; n: number }[]);
      const pending = count(s.pendingCounts.all() as { k: string; n: number }[]);
      const dead = count(s.dlCounts.all() as { k: string; n: number }[]);
      const alive = count(s.consumersAlive.all(Date.now() - CONSUMER_ALIVE_MS) as { k: string; n: number }[]);
      const groups = new Map<string, TopicStats['groups']>();
      for (const c of s.cursorsAll.all() as { grp: string; topic: string; seq: number; gid: number }[]) {
        const list = groups.get(c.topic) ?? [];
        if (list.length === 0) groups.set(c.topic, list);
        list.push({
          group: c.grp,
          pending: pending.get(`${c.gid}\n${c.topic}`) ?? 0,
          lag: (s.lag.get(c.topic, c.seq) as { n: number }).n,
          consumers: alive.get(c.grp) ?? 0,
          deadLetters: dead.get(`${c.grp}\n${c.topic}`) ?? 0,
        });
      }
      return (s.topics.all() as { name: string }[]).map(({ name }) => ({ type: name, length: lengths.get(name) ?? 0, groups: groups.get(name) ?? [] }));
    });
  }

  /**
   * Driver.admin.housekeep: expired dedup markers, consumers gone, expired keyed-agent state and waits. A
   * read-only bus skips it (it is the writers' job).
   */
  async housekeep(): Promise<void> {
    if (this.st.readonly) return;
    const { s } = this.st;
    const now = Date.now();
    await this.st.write(() => {
      s.dedupExpire.run(now);
      s.consumersExpire.run(now - CONSUMER_ALIVE_MS);
      this.st.stateStatements()?.stateExpire.run(now); // invisible since they expired; gone now
      this.st.waitStatements()?.waitExpire.run(now); // waits whose delivery was never committed (dead-lettered), past deadline + margin
    });
  }

  /**
   * Driver.admin.dropTopic: every row of the topic and of its group (named as the topic), in one
   * transaction. A read-only bus leaves it to the writers (as housekeeping): false.
   */
  async dropTopic(topic: string): Promise<boolean> {
    if (this.st.readonly) return false;
    await this.st.write(() => {
      for (const statement of this.st.s.topicDrop) statement.run({ topic });
    });
    this.st.forgetGroup(topic);
    this.dropped(topic);
    return true;
  }

  /** Driver.admin.trim: on a read-only bus, refused when exact (bus.trim()), nothing from the timer. */
  async trim(retention: { maxLen: number; maxAgeMs: number } | null, exact: boolean): Promise<number> {
    if (this.st.readonly && !exact) return 0; // the retention timer: retention is the writers' job
    const { s } = this.st;
    const now = Date.now();
    return this.st.write(() => {
      if (retention === null) return 0;
      let removed = 0;
      for (const { name } of s.topics.all() as { name: string }[]) {
        let upTo = 0;
        if (retention.maxLen < MAX) upTo = (s.nthNewest.get(name, retention.maxLen) as { seq: number } | undefined)?.seq ?? 0;
        if (retention.maxAgeMs < MAX) upTo = Math.max(upTo, (s.lastBefore.get(name, now - retention.maxAgeMs) as { seq: number | null }).seq ?? 0);
        // Keep each topic's newest event: it keeps seq from being reused (see schema.ts).
        upTo = Math.min(upTo, ((s.last.get(name) as { seq: number | null }).seq ?? 0) - 1);
        if (upTo <= 0) continue;
        removed += s.trimTopic.run(name, upTo).changes;
        s.trimPending.run(name, upTo); // pending entries whose event is gone: cleared, never looped on
      }
      return removed;
    });
  }

  async ping(): Promise<void> {
    this.st.db.prepare('SELECT 1').get();
  }
}
