/**
 * The SQLite events table as the log (Driver.log): appending publishes (with the dedup window for
 * caller-chosen ids), reading stored events back outside any group (range, for replay; last), and
 * the topics table (topics).
 */
import type { AppendEntry, Delivery, DriverLog, RangeQuery } from '../../bus/driver.js';
import { REPLY_PREFIX } from '../../bus/event.js';
import { delivery, HandOffFailed } from './read.js';
import { ROWS_PER_INSERT, type StoredRow } from './statements.js';
import type { SqliteStore } from './store.js';

const MAX = Number.MAX_SAFE_INTEGER;
/** The names a topics() call reads again at least this often (as the Redis adapter's listing). */
const LIST_EVERY_MS = 10_000;
/** Past every reply topic's name (`/` follows `.`): they are the names in [REPLY_PREFIX, REPLY_END). */
const REPLY_END = `${REPLY_PREFIX.slice(0, -1)}/`;
const UNLISTED = { count: -1, replies: -1, until: 0, names: [] };

export class Events implements DriverLog {
  /** Topics this driver has recorded in the topics table: each is inserted once. */
  private readonly knownTopics = new Set<string>();
  private listed: { count: number; replies: number; until: number; names: string[] } = UNLISTED;

  constructor(private readonly st: SqliteStore) {}

  /**
   * Waiting reads on this connection are served in the same transaction (SqliteStore.handOff); the
   * others are woken. A hand-off that fails (HandOffFailed) rolls the whole transaction back, and
   * the append runs again without serving anyone: the reads then wake and take for themselves.
   */
  async append(entries: AppendEntry[]): Promise<void> {
    try {
      // Rows are kept for the hand-off only while a read waits here (no allocation per event otherwise).
      await this.st.write(
        () => this.st.handOff(this.appendTx(entries, this.st.serving() ? [] : null) ?? []),
        (handOver) => handOver(),
      );
    } catch (err) {
      this.knownTopics.clear(); // topics noted in a rolled-back transaction were not stored
      if (!(err instanceof HandOffFailed)) throw err;
      try {
        await this.st.write(() => this.appendTx(entries, null));
      } catch (again) {
        this.knownTopics.clear();
        throw again;
      }
    }
    this.st.changed();
  }

  /**
   * A lone publish is appended inside the publish() call (bus/publish.ts): a commit here costs no
   * round trip, and the wait for the next turn was 10-20 us of a 0.2 ms in-process hop. Not while
   * this connection is inside a transaction (a caller's own, on a database passed to the bus): the
   * append would join it, and its hand-off could deliver what that transaction then rolls back.
   */
  appendsNow(): boolean {
    return !this.st.db.inTransaction;
  }

  /**
   * Runs of entries without a caller id go in INSERTs of ROWS_PER_INSERT rows (~35% faster,
   * measured). Adds to `stored` (null: keeps none) the rows stored in `events`, with the sequence
   * number of each row inserted alone (0 for a multi-row INSERT's: the hand-off reads those back).
   */
  private appendTx(entries: AppendEntry[], stored: StoredRow[] | null): StoredRow[] | null {
    const s = this.st.s;
    const now = Date.now();
    for (let i = 0; i < entries.length; ) {
      const e = entries[i];
      if (e.dedup || e.dueAt !== undefined) {
        this.noteTopic(e.topic);
        const seen = e.dedup ? (s.dedupGet.get(e.topic, e.event.source, e.event.id) as { expires: number } | undefined) : undefined;
        if (!seen || seen.expires <= now) {
          // A delayed event goes to `due` (due.ts moves it); its dedup marker has no seq yet: 0.
          const seq = e.dueAt !== undefined ? (this.storeDue(e), 0) : Number(s.insertEvent.run(e.topic, now, e.body).lastInsertRowid);
          if (seq !== 0) stored?.push({ topic: e.topic, seq, body: e.body });
          if (e.dedup) s.dedupPut.run(e.topic, e.event.source, e.event.id, seq, now + e.dedupWindowMs);
        }
        i++;
        continue;
      }
      let end = i;
      while (end < entries.length && end - i < ROWS_PER_INSERT && !entries[end].dedup && entries[end].dueAt === undefined) this.noteTopic(entries[end++].topic);
      if (end - i === ROWS_PER_INSERT) {
        const args: unknown[] = [];
        for (let k = i; k < end; k++) {
          args.push(entries[k].topic, now, entries[k].body);
          stored?.push({ topic: entries[k].topic, seq: 0, body: entries[k].body });
        }
        s.insertMany.run(args);
      } else {
        for (let k = i; k < end; k++) {
          const { topic, body } = entries[k];
          const seq = Number(s.insertEvent.run(topic, now, body).lastInsertRowid);
          stored?.push({ topic, seq, body });
        }
      }
      i = end;
    }
    return stored;
  }

  /** A due row; a named one first deletes the pending row of its name, in this same transaction. */
  private storeDue(e: AppendEntry): void {
    const ds = this.st.dueStatements()!;
    if (e.dueName === undefined) {
      ds.dueInsert.run(e.topic, e.dueAt, e.body);
      return;
    }
    if (ds.dueInsertNamed === null || ds.dueDeleteName === null) throw new Error('the due table has no name column (an older schema read-only)');
    ds.dueDeleteName.run(e.dueName);
    ds.dueInsertNamed.run(e.topic, e.dueAt, e.body, e.dueName);
  }

  /** A reply topic is noted with every reply: its bus may have dropped it (closing) since the last one, and the sweep finds topics here. */
  private noteTopic(topic: string): void {
    if (this.knownTopics.has(topic)) return;
    this.st.s.insertTopic.run(topic);
    if (!topic.startsWith(REPLY_PREFIX)) this.knownTopics.add(topic);
  }

  async range(topic: string, q: RangeQuery): Promise<Delivery[]> {
    const st = this.st;
    const after = q.after === null ? 0 : st.seqOf(q.after, 'after');
    const [fromSeq, fromTime] = q.from === null ? [0, 0] : 'position' in q.from ? [st.seqOf(q.from.position, 'from'), 0] : [0, q.from.time];
    const [toSeq, toTime] = q.to === null ? [MAX, MAX] : 'position' in q.to ? [st.seqOf(q.to.position, 'to'), MAX] : [MAX, q.to.time];
    const rows = st.s.range.all(topic, Math.max(after + 1, fromSeq), toSeq, fromTime, toTime, q.limit, { max: q.maxBytes }) as { seq: number; body: string; size: number }[];
    return rows.map((r) => delivery(topic, r.seq, 0, r.body, r.size, q.maxBytes));
  }

  async last(topic: string): Promise<string | null> {
    const r = this.st.s.last.get(topic) as { seq: number | null };
    return r.seq === null ? null : String(r.seq);
  }

  /** Driver.log.registered: the topics table's names with that prefix. */
  async registered(prefix: string): Promise<string[]> {
    return (this.st.s.topicsStartingWith.all(prefix.length, prefix) as { name: string }[]).map((r) => r.name);
  }

  /** A topic dropped (Admin.dropTopic): inserted again in the topics table if published again. */
  forget(topic: string): void {
    this.knownTopics.delete(topic);
    this.listed = UNLISTED;
  }

  /**
   * Pattern consumers ask every 100 ms: the names are read again only when the count of topics or of
   * reply topics changed, or LIST_EVERY_MS passed. Only reply topics are ever removed (Admin.dropTopic),
   * so a new topic always changes one of the two counts, even when a reply topic went meanwhile
   * (patterns never match reply topics; a reply topic replaced by another between two looks is
   * listed once LIST_EVERY_MS passed).
   */
  async topics(): Promise<string[]> {
    const { s } = this.st;
    const { n, r } = s.topicCount.get(REPLY_PREFIX, REPLY_END) as { n: number; r: number };
    if (n !== this.listed.count || r !== this.listed.replies || Date.now() >= this.listed.until) {
      this.listed = { count: n, replies: r, until: Date.now() + LIST_EVERY_MS, names: (s.topics.all() as { name: string }[]).map((row) => row.name) };
    }
    return [...this.listed.names];
  }
}
