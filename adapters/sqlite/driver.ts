import type { Database, Statement } from 'better-sqlite3';
import type { EventEmitter } from 'eventemitter3';
import { CONSUMER_ALIVE_MS, isoTime, type AppendEntry, type Delivery, type Driver, type RangeQuery, type ReadRequest, type StoreBound } from '../../bus/driver.js';
import type { DeadLetter, TopicStats } from '../../bus/contract.js';
import { decodeEvent, oversize, OVERSIZE_KEPT_CHARS } from '../../bus/event.js';
import { invalid, NotFoundError } from '../../bus/errors.js';

const MAX = Number.MAX_SAFE_INTEGER;
const ROWS_PER_INSERT = 50;

/**
 * The SQLite store. Every multi-row change is one transaction; every read-modify-write is IMMEDIATE,
 * because a deferred one that upgrades to a write while another process writes fails with
 * SQLITE_BUSY whatever the busy timeout. Wake-ups: an emitter inside the process, a poll across.
 */
export class SqliteDriver implements Driver {
  private readonly knownTopics = new Set<string>();
  private readonly gids = new Map<string, number>();
  private readonly seen = new Map<string, number>();
  private readonly s: ReturnType<typeof prepare>;
  private readonly tx: { immediate<T>(fn: () => T): T; deferred<T>(fn: () => T): T };

  constructor(
    private readonly db: Database,
    private readonly notifier: EventEmitter,
    private readonly pollMs: number,
    private readonly busyTimeoutMs: number,
    private readonly ownsDb: boolean,
    /** Opened with `readonly`: every write is refused with an error naming the option. */
    private readonly readonly = false,
  ) {
    this.s = prepare(db);
    this.tx = db.transaction((fn: () => unknown) => fn()) as unknown as SqliteDriver['tx'];
  }

  /**
   * Runs `fn` in an IMMEDIATE transaction. The connection's busy_timeout is 0: SQLite's own busy
   * handler sleeps 1, 2, 5, 10... ms and overshoots the other process' short transactions, so a
   * busy lock is retried from here every millisecond, without blocking the event loop meanwhile.
   */
  private async write<T>(fn: () => T): Promise<T> {
    if (this.readonly) {
      throw invalid('INVALID_OPTION', `the SQLite bus on ${this.db.name} was opened with readonly: true: publish, subscribe, rewind, trim and dead-letter retry/purge need a bus without it`);
    }
    const end = Date.now() + this.busyTimeoutMs;
    for (;;) {
      try {
        return this.tx.immediate(fn);
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= end) throw err;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** A consistent snapshot for multi-statement reads (WAL: readers never wait for writers). */
  private snapshot<T>(fn: () => T): T {
    return this.tx.deferred(fn);
  }

  /** Runs of entries without a caller id go in INSERTs of ROWS_PER_INSERT rows (~35% faster, measured). */
  private appendTx(entries: AppendEntry[]): void {
    const s = this.s;
    const now = Date.now();
    for (let i = 0; i < entries.length; ) {
      const e = entries[i];
      if (e.dedup) {
        this.noteTopic(e.topic);
        const seen = s.dedupGet.get(e.topic, e.event.source, e.event.id) as { expires: number } | undefined;
        if (!seen || seen.expires <= now) {
          const seq = Number(s.insertEvent.run(e.topic, now, e.body).lastInsertRowid);
          s.dedupPut.run(e.topic, e.event.source, e.event.id, seq, now + e.dedupWindowMs);
        }
        i++;
        continue;
      }
      let end = i;
      while (end < entries.length && end - i < ROWS_PER_INSERT && !entries[end].dedup) this.noteTopic(entries[end++].topic);
      if (end - i === ROWS_PER_INSERT) {
        const args: unknown[] = [];
        for (let k = i; k < end; k++) args.push(entries[k].topic, now, entries[k].body);
        s.insertMany.run(args);
      } else {
        for (let k = i; k < end; k++) s.insertEvent.run(entries[k].topic, now, entries[k].body);
      }
      i = end;
    }
  }

  private noteTopic(topic: string): void {
    if (this.knownTopics.has(topic)) return;
    this.s.insertTopic.run(topic);
    this.knownTopics.add(topic);
  }

  async append(entries: AppendEntry[]): Promise<void> {
    try {
      await this.write(() => this.appendTx(entries));
    } catch (err) {
      this.knownTopics.clear(); // topics noted in a rolled-back transaction were not stored
      throw err;
    }
    this.notifier.emit('change');
  }

  /** Pattern consumers ask every 100 ms: the names are read again only when their count changed (topics are never removed). */
  async topics(): Promise<string[]> {
    const { n } = this.s.topicCount.get() as { n: number };
    if (n !== this.listed.count) this.listed = { count: n, names: (this.s.topics.all() as { name: string }[]).map((r) => r.name) };
    return [...this.listed.names];
  }

  private listed: { count: number; names: string[] } = { count: -1, names: [] };
  /** The wake-up of each consumer's read that is waiting; consumers woken while not waiting (see wakeRead). */
  private readonly waiting = new Map<string, () => void>();
  private readonly woken = new Set<string>();

  /** Ends the consumer's wait now, or, when it is not waiting (its read may hold the old topics), its next one. */
  wakeRead(group: string, consumer: string): void {
    const who = `${group}\n${consumer}`;
    const w = this.waiting.get(who);
    if (w) w();
    else this.woken.add(who);
  }

  async createGroup(group: string, topics: string[], from: 'latest' | 'earliest'): Promise<number> {
    return this.write(() => {
      const created = this.s.groupCreate.run(group, from === 'earliest' ? 0 : this.maxSeq()).changes === 1;
      const { start } = this.s.groupGet.get(group) as { start: number };
      let skipped = 0;
      for (const t of topics) {
        const cursor = this.s.cursorCreate.run(group, t, start).changes === 1;
        // Counted on the topic index, once, when a group is made at latest.
        if (created && cursor && from === 'latest') skipped += (this.s.countUpTo.get(t, start) as { n: number }).n;
      }
      return skipped;
    });
  }

  /** The group's integer id; subscribe creates a group before any other call can name it. */
  private gid(group: string): number {
    let id = this.gids.get(group);
    if (id === undefined) {
      const row = this.s.groupGet.get(group) as { gid: number } | undefined;
      if (row === undefined) throw new NotFoundError('NOT_FOUND', `group ${JSON.stringify(group)} does not exist`);
      this.gids.set(group, (id = row.gid));
    }
    return id;
  }

  private maxSeq(): number {
    return (this.s.maxSeq.get() as { seq: number | null }).seq ?? 0;
  }

  async read(req: ReadRequest): Promise<Delivery[]> {
    const got = await this.take(req, req.ack);
    if (got.length > 0 || req.signal.aborted) return got;
    await this.waitForChange(req);
    return req.signal.aborted ? [] : this.take(req, []);
  }

  /** Claims under the write lock; decoding waits until the lock is released (it is CPU work). */
  private async take(req: ReadRequest, ack: Delivery[]): Promise<Delivery[]> {
    const rows = await this.write(() => this.takeTx(req, ack));
    const out = new Array<Delivery>(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = delivery(rows[i].topic, rows[i].seq, rows[i].attempts, rows[i].body, rows[i].size, req.maxBytes);
    return out;
  }

  private takeTx(req: ReadRequest, ack: Delivery[]): Taken[] {
    {
      const s = this.s;
      const gid = this.gid(req.group);
      for (const d of ack) s.pendingDelete.run(gid, Number(d.position));
      const now = Date.now();
      const deadline = now + req.leaseMs;
      const out: Taken[] = [];
      const topics = new Set(req.topics);
      // 1. Deliveries whose lease ran out (consumer died) or that were released/retried.
      const max = { max: req.maxBytes };
      for (const r of s.available.all(gid, now, req.max * 2, max) as PendingRow[]) {
        if (out.length >= req.max) break;
        if (!topics.has(r.topic)) continue;
        if (r.body === null) {
          s.pendingDelete.run(gid, r.seq); // trimmed while pending: clear, never loop
          continue;
        }
        s.claim.run(req.consumer, deadline, gid, r.seq);
        out.push({ topic: r.topic, seq: r.seq, attempts: r.attempts + 1, body: r.body, size: r.size });
      }
      // 2. New events, topic by topic from a rotating start so no topic starves.
      const n = req.topics.length;
      const first = n > 1 ? Math.floor(Math.random() * n) : 0;
      for (let i = 0; i < n && out.length < req.max; i++) {
        const topic = req.topics[(first + i) % n];
        const cursor = (s.cursorGet.get(req.group, topic) as { seq: number } | undefined)?.seq;
        if (cursor === undefined) continue;
        const rows = s.newEvents.all(topic, cursor, req.max - out.length, max) as { seq: number; body: string; size: number }[];
        if (rows.length === 0) continue;
        for (const r of rows) {
          s.pendingInsert.run(gid, r.seq, topic, req.consumer, deadline, 1);
          out.push({ topic, seq: r.seq, attempts: 1, body: r.body, size: r.size });
        }
        s.cursorSet.run(rows[rows.length - 1].seq, req.group, topic);
      }
      const key = `${gid}/${req.consumer}`;
      if ((this.seen.get(key) ?? 0) < now - 1000) {
        s.consumerSeen.run(req.group, req.consumer, now); // stats' liveness: once a second is enough
        this.seen.set(key, now);
      }
      return out;
    }
  }

  /** Resolves on an in-process change, on a change seen by polling (other processes), at blockMs, or on abort. */
  private waitForChange(req: ReadRequest): Promise<void> {
    const who = `${req.group}\n${req.consumer}`;
    if (this.woken.delete(who)) return Promise.resolve();
    return new Promise((resolve) => {
      const end = Date.now() + req.blockMs;
      const seq = this.maxSeq();
      const done = () => {
        clearInterval(timer);
        if (this.waiting.get(who) === done) this.waiting.delete(who);
        this.notifier.off('change', done);
        req.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setInterval(() => {
        const now = Date.now();
        try {
          if (now >= end || this.maxSeq() !== seq || this.s.anyAvailable.get(this.gid(req.group), now) !== undefined) done();
        } catch {
          done(); // the store was busy: let the caller try a read
        }
      }, this.pollMs);
      this.notifier.on('change', done);
      this.waiting.set(who, done);
      req.signal.addEventListener('abort', done);
    });
  }

  async ack(group: string, ds: Delivery[]): Promise<void> {
    const gid = this.gid(group);
    await this.eachTx(ds, (d) => this.s.pendingDelete.run(gid, Number(d.position)));
  }

  async renew(group: string, consumer: string, ds: Delivery[], leaseMs: number): Promise<void> {
    const deadline = Date.now() + leaseMs;
    const gid = this.gid(group);
    await this.eachTx(ds, (d) => this.s.renew.run(deadline, gid, Number(d.position), consumer));
  }

  async release(group: string, consumer: string, ds: Delivery[]): Promise<void> {
    const gid = this.gid(group);
    await this.eachTx(ds, (d) => this.s.release.run(d.attempts, gid, Number(d.position), consumer));
    this.notifier.emit('change');
  }

  async countAttempt(group: string, d: Delivery): Promise<void> {
    const gid = this.gid(group);
    await this.write(() => this.s.countAttempt.run(gid, Number(d.position)));
  }

  /** Prepared on first use: a read-only version-1 file (see schema.ts) has no `stack` column to prepare it against. */
  private dlInsert: Statement | null = null;

  async deadLetter(group: string, d: Delivery, reason: string, error: string, stack?: string): Promise<void> {
    await this.write(() => {
      this.dlInsert ??= this.db.prepare('INSERT INTO dead_letters (grp, topic, seq, body, reason, error, stack, attempts, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      this.dlInsert.run(group, d.topic, Number(d.position), d.raw, reason, error, stack ?? null, d.attempts, Date.now());
      this.s.pendingDelete.run(this.gid(group), Number(d.position));
    });
  }

  async range(topic: string, q: RangeQuery): Promise<Delivery[]> {
    const after = q.after === null ? 0 : this.seqOf(q.after, 'after');
    const [fromSeq, fromTime] = q.from === null ? [0, 0] : 'position' in q.from ? [this.seqOf(q.from.position, 'from'), 0] : [0, q.from.time];
    const [toSeq, toTime] = q.to === null ? [MAX, MAX] : 'position' in q.to ? [this.seqOf(q.to.position, 'to'), MAX] : [MAX, q.to.time];
    const rows = this.s.range.all(topic, Math.max(after + 1, fromSeq), toSeq, fromTime, toTime, q.limit, { max: q.maxBytes }) as { seq: number; body: string; size: number }[];
    return rows.map((r) => delivery(topic, r.seq, 0, r.body, r.size, q.maxBytes));
  }

  async last(topic: string): Promise<string | null> {
    const r = this.s.last.get(topic) as { seq: number | null };
    return r.seq === null ? null : String(r.seq);
  }

  async seek(group: string, topic: string, from: StoreBound | 'earliest'): Promise<void> {
    const at = from !== 'earliest' && 'position' in from ? this.seqOf(from.position, 'from') : null; // bad input before store errors
    await this.write(() => {
        if (this.s.cursorGet.get(group, topic) === undefined) {
          throw new NotFoundError('NOT_FOUND', `group ${JSON.stringify(group)} has never subscribed to ${JSON.stringify(topic)}`);
        }
        let next: number;
        if (from === 'earliest') next = 1;
        else if ('position' in from) next = at!;
        else next = (this.s.firstAtTime.get(topic, from.time) as { seq: number | null }).seq ?? this.maxSeq() + 1;
        this.s.cursorSet.run(next - 1, group, topic);
    });
    this.notifier.emit('change');
  }

  async dlqList(f: { group?: string; type?: string; limit: number }): Promise<DeadLetter[]> {
    return (this.s.dlList.all({ grp: f.group ?? null, topic: f.type ?? null, limit: f.limit }) as DlRow[]).map(deadLetter);
  }

  async dlqGet(id: string): Promise<DeadLetter | null> {
    const r = /^\d+$/.test(id) ? (this.s.dlGet.get(Number(id)) as DlRow | undefined) : undefined;
    return r ? deadLetter(r) : null;
  }

  async dlqRetry(ids: string[]): Promise<number> {
    let n = 0;
    await this.write(() => {
        for (const id of ids) {
          const r = /^\d+$/.test(id) ? (this.s.dlGet.get(Number(id)) as DlRow | undefined) : undefined;
          if (!r) continue;
          // Back to this group only, with its own copy of the body so trimming cannot lose it.
          this.s.pendingRetry.run(this.gid(r.grp), r.seq, r.topic, r.body);
          this.s.dlDelete.run(r.id);
          n++;
        }
    });
    this.notifier.emit('change');
    return n;
  }

  async dlqPurge(ids: string[]): Promise<number> {
    let n = 0;
    await this.eachTx(ids.filter((id) => /^\d+$/.test(id)), (id) => (n += this.s.dlDelete.run(Number(id)).changes));
    return n;
  }

  /**
   * One aggregate query per table, grouped by topic and group, then joined here: proportional to the
   * rows counted, not to topics x groups. Lag is counted per cursor over the topic index (what is
   * past the cursor). Consumers are those seen within CONSUMER_ALIVE_MS, the same for every topic of
   * a group (a consumer reads all of them).
   */
  async stats(): Promise<TopicStats[]> {
    const s = this.s;
    return this.snapshot(() => {
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

  async trim(retention: { maxLen: number; maxAgeMs: number } | null, _dedupWindowMs: number, exact = false): Promise<number> {
    if (this.readonly && !exact) return 0; // the housekeeping timer: retention is the writers' job
    const s = this.s;
    const now = Date.now();
    return this.write(() => {
        s.dedupExpire.run(now);
        s.consumersExpire.run(now - CONSUMER_ALIVE_MS);
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

  async forget(group: string, consumer: string): Promise<void> {
    // Pending rows keep their owner for reclaiming; the consumers row only feeds stats.
    await this.write(() => this.s.consumerForget.run(group, consumer));
    this.seen.delete(`${this.gid(group)}/${consumer}`);
  }

  /** A read already counts as a heartbeat: at most one write a second per consumer either way. */
  async heartbeat(group: string, consumer: string): Promise<void> {
    const key = `${this.gid(group)}/${consumer}`;
    const now = Date.now();
    if ((this.seen.get(key) ?? 0) >= now - 1000) return;
    this.seen.set(key, now);
    await this.write(() => this.s.consumerSeen.run(group, consumer, now));
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.ownsDb && this.db.open) this.db.close();
  }

  private async eachTx<T>(items: T[], fn: (item: T) => unknown): Promise<void> {
    if (items.length > 0) await this.write(() => items.forEach(fn));
  }

  private seqOf(position: string, name: string): number {
    if (!/^\d+$/.test(position)) throw invalid('INVALID_OPTION', `invalid ${name} position ${JSON.stringify(position)}: a SQLite position is a sequence number (digits)`);
    if (!Number.isSafeInteger(Number(position))) {
      throw invalid('INVALID_OPTION', `invalid ${name} position ${JSON.stringify(position)}: a SQLite sequence number is at most ${Number.MAX_SAFE_INTEGER}`);
    }
    return Number(position);
  }
}

interface PendingRow { topic: string; seq: number; attempts: number; body: string | null; size: number }
interface Taken { topic: string; seq: number; attempts: number; body: string; size: number }
/** `stack` is undefined on a version-1 file read as it is, null when the dead letter has none. */
interface DlRow { id: number; grp: string; topic: string; seq: number; body: string; reason: string; error: string; stack?: string | null; attempts: number; failed_at: number }

/**
 * `body` and `size` as selected by BODY(): past `maxBytes` the body is only its start (SQL cut it,
 * so the whole never reached JavaScript) and is not decoded.
 */
function delivery(topic: string, seq: number, attempts: number, body: string, size: number, maxBytes: number): Delivery {
  if (size > maxBytes) {
    const big = oversize(body, size, maxBytes);
    return { topic, position: String(seq), attempts, event: null, raw: big.raw, malformed: big.malformed, oversize: true };
  }
  const event = decodeEvent(body);
  return typeof event === 'string'
    ? { topic, position: String(seq), attempts, event: null, raw: body, malformed: event }
    : { topic, position: String(seq), attempts, event, raw: body };
}

function deadLetter(r: DlRow): DeadLetter {
  const event = decodeEvent(r.body);
  return {
    id: String(r.id),
    group: r.grp,
    type: r.topic,
    position: String(r.seq),
    event: typeof event === 'string' ? null : event,
    raw: typeof event === 'string' ? r.body : null,
    reason: r.reason,
    error: r.error,
    ...(typeof r.stack === 'string' ? { stack: r.stack } : {}),
    attempts: r.attempts,
    failedAt: isoTime(r.failed_at),
  };
}

/**
 * Selects a body as `body` and its UTF-8 size as `size`; a body over `@max` bytes only as its first
 * OVERSIZE_KEPT_CHARS characters. octet_length() reads the stored size without loading the value.
 */
const BODY = (col: string) =>
  `CASE WHEN octet_length(${col}) > @max THEN substr(${col}, 1, ${OVERSIZE_KEPT_CHARS}) ELSE ${col} END AS body, octet_length(${col}) AS size`;

function prepare(db: Database) {
  const p = (sql: string): Statement => db.prepare(sql);
  return {
    insertEvent: p('INSERT INTO events (topic, stored, body) VALUES (?, ?, ?)'),
    insertMany: p(`INSERT INTO events (topic, stored, body) VALUES ${Array(ROWS_PER_INSERT).fill('(?, ?, ?)').join(', ')}`),
    insertTopic: p('INSERT OR IGNORE INTO topics (name) VALUES (?)'),
    dedupGet: p('SELECT seq, expires FROM dedup WHERE topic = ? AND source = ? AND id = ?'),
    dedupPut: p('INSERT OR REPLACE INTO dedup (topic, source, id, seq, expires) VALUES (?, ?, ?, ?, ?)'),
    dedupExpire: p('DELETE FROM dedup WHERE expires <= ?'),
    topics: p('SELECT name FROM topics ORDER BY name'),
    topicCount: p('SELECT COUNT(*) AS n FROM topics'),
    maxSeq: p('SELECT MAX(seq) AS seq FROM events'),
    groupCreate: p('INSERT OR IGNORE INTO groups (grp, start) VALUES (?, ?)'),
    groupGet: p('SELECT gid, start FROM groups WHERE grp = ?'),
    cursorCreate: p('INSERT OR IGNORE INTO cursors (grp, topic, seq) VALUES (?, ?, ?)'),
    cursorGet: p('SELECT seq FROM cursors WHERE grp = ? AND topic = ?'),
    cursorSet: p('UPDATE cursors SET seq = ? WHERE grp = ? AND topic = ?'),
    cursorsAll: p('SELECT c.grp, c.topic, c.seq, g.gid FROM cursors c JOIN groups g ON g.grp = c.grp ORDER BY c.topic, c.grp'),
    available: p(`SELECT p.topic, p.seq, p.attempts, ${BODY('COALESCE(p.body, e.body)')}
                  FROM pending p LEFT JOIN events e ON e.seq = p.seq
                  WHERE p.gid = ? AND p.deadline <= ? ORDER BY p.deadline LIMIT ?`),
    anyAvailable: p('SELECT 1 FROM pending WHERE gid = ? AND deadline <= ? LIMIT 1'),
    claim: p('UPDATE pending SET consumer = ?, deadline = ?, attempts = attempts + 1 WHERE gid = ? AND seq = ?'),
    newEvents: p(`SELECT seq, ${BODY('body')} FROM events WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ?`),
    pendingInsert: p('INSERT OR REPLACE INTO pending (gid, seq, topic, consumer, deadline, attempts) VALUES (?, ?, ?, ?, ?, ?)'),
    pendingRetry: p('INSERT OR REPLACE INTO pending (gid, seq, topic, consumer, deadline, attempts, body) VALUES (?, ?, ?, NULL, 0, 0, ?)'),
    pendingDelete: p('DELETE FROM pending WHERE gid = ? AND seq = ?'),
    pendingCounts: p("SELECT gid || char(10) || topic AS k, COUNT(*) AS n FROM pending GROUP BY gid, topic"),
    renew: p('UPDATE pending SET deadline = ? WHERE gid = ? AND seq = ? AND consumer = ?'),
    release: p('UPDATE pending SET consumer = NULL, deadline = 0, attempts = ? WHERE gid = ? AND seq = ? AND consumer = ?'),
    countAttempt: p('UPDATE pending SET attempts = attempts + 1 WHERE gid = ? AND seq = ?'),
    consumerSeen: p('INSERT OR REPLACE INTO consumers (grp, consumer, seen) VALUES (?, ?, ?)'),
    consumersAlive: p('SELECT grp AS k, COUNT(*) AS n FROM consumers WHERE seen >= ? GROUP BY grp'),
    // A consumer not seen for the window and holding nothing: its process is gone.
    consumersExpire: p(`DELETE FROM consumers WHERE seen < ? AND NOT EXISTS
                        (SELECT 1 FROM pending p JOIN groups g ON g.gid = p.gid WHERE g.grp = consumers.grp AND p.consumer = consumers.consumer)`),
    consumerForget: p('DELETE FROM consumers WHERE grp = ? AND consumer = ?'),
    dlList: p('SELECT * FROM dead_letters WHERE (@grp IS NULL OR grp = @grp) AND (@topic IS NULL OR topic = @topic) ORDER BY id LIMIT @limit'),
    dlGet: p('SELECT * FROM dead_letters WHERE id = ?'),
    dlDelete: p('DELETE FROM dead_letters WHERE id = ?'),
    dlCounts: p("SELECT grp || char(10) || topic AS k, COUNT(*) AS n FROM dead_letters GROUP BY grp, topic"),
    range: p(`SELECT seq, ${BODY('body')} FROM events WHERE topic = ? AND seq >= ? AND seq <= ? AND stored >= ? AND stored <= ? ORDER BY seq LIMIT ?`),
    last: p('SELECT MAX(seq) AS seq FROM events WHERE topic = ?'),
    firstAtTime: p('SELECT MIN(seq) AS seq FROM events WHERE topic = ? AND stored >= ?'),
    lengths: p('SELECT topic AS k, COUNT(*) AS n FROM events GROUP BY topic'),
    lag: p('SELECT COUNT(*) AS n FROM events WHERE topic = ? AND seq > ?'),
    countUpTo: p('SELECT COUNT(*) AS n FROM events WHERE topic = ? AND seq <= ?'),
    nthNewest: p('SELECT seq FROM events WHERE topic = ? ORDER BY seq DESC LIMIT 1 OFFSET ?'),
    lastBefore: p('SELECT MAX(seq) AS seq FROM events WHERE topic = ? AND stored < ?'),
    trimTopic: p('DELETE FROM events WHERE topic = ? AND seq <= ?'),
    trimPending: p('DELETE FROM pending WHERE topic = ? AND seq <= ? AND body IS NULL'),
  };
}
