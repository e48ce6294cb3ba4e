/**
 * The SQLite read path: acknowledge, take deliveries whose lease ran out (or that were released or
 * retried), then new events topic by topic, all in one IMMEDIATE transaction; when there is
 * nothing, wait for a change (in-process wake-up, the WAL watch or a poll for other processes,
 * Driver.reads.wake, abort). A read waiting on this connection is served by the next append itself
 * (handOff): what it would take when woken is taken inside the append's transaction, so an
 * in-process hop is one commit, not two, and no second wake-up.
 */
import type { Delivery, DriverReads, ReadRequest } from '../../bus/driver.js';
import { decodeEvent, oversize } from '../../bus/event.js';
import type { PendingRow, Taken } from './statements.js';
import type { SqliteStore } from './store.js';

/** While the file is watched (wakeups.ts), a waiting read still polls this often, in case a change was missed. */
export const WATCHED_POLL_MS = 1000;
/** After a WAL change that showed nothing new, the last look is this much later (the first is on the next turn; see waitForChange). */
const RECHECK_MS = 2;

/** A read waiting for a change; `done` ends the wait, with the rows an append handed it if any. */
interface Waiter {
  req: ReadRequest;
  done: (rows?: Taken[]) => void;
}

const nothing = () => {};

export class ReadPath implements DriverReads {
  /** Each consumer's read that is waiting; consumers woken while not waiting (see wake). */
  private readonly waiting = new Map<string, Waiter>();
  private readonly woken = new Set<string>();
  /** Runs a function in a savepoint inside the current transaction. */
  private readonly savepoint: (fn: () => Taken[]) => Taken[];

  constructor(
    private readonly st: SqliteStore,
    /** How often a waiting read looks for changes made by other processes when the file is not watched (SqliteBusOptions.pollMs). */
    private readonly pollMs: number,
  ) {
    this.savepoint = st.db.transaction((fn: () => Taken[]) => fn());
    st.handOff = (appended) => this.handOff(appended);
  }

  /**
   * Driver.reads.read: see there. A read that carries no acks goes straight to waitForChange, which ends
   * at once when there is something to take (somethingFor, two index probes outside any
   * transaction): the read a consumer sends right after its handlers start would otherwise be an
   * empty IMMEDIATE transaction.
   */
  async read(req: ReadRequest): Promise<Delivery[]> {
    if (req.ack.length > 0) {
      const got = await this.take(req, req.ack);
      if (got.length > 0 || req.signal.aborted) return got;
    }
    const handed = await this.waitForChange(req, JSON.stringify(req.topics));
    // Rows handed over are claimed already: returned even after an abort (the consumer releases them).
    if (handed !== undefined) return this.deliveries(req, handed);
    return req.signal.aborted ? [] : this.take(req, []);
  }

  /** Ends the consumer's wait now, or, when it is not waiting (its read may hold the old topics), its next one. */
  wake(group: string, consumer: string): void {
    const who = `${group}\n${consumer}`;
    const w = this.waiting.get(who);
    if (w) w.done();
    else this.woken.add(who);
  }

  /**
   * Called inside an append's transaction (SqliteStore.handOff) with the entries it appended:
   * takes, for each read waiting on this connection for one of their topics, what it would take
   * once woken, each in a savepoint (a failure leaves that read to wake and take for itself).
   * Returns what hands the rows over, called right after the commit (SqliteStore.write's
   * `committed`, before an abort can end a wait empty-handed); a rollback discards the claims with
   * the append, and the reads wake as usual.
   */
  private handOff(appended: readonly { topic: string }[]): () => void {
    if (this.waiting.size === 0) return nothing;
    const topics = new Set(appended.map((e) => e.topic));
    const served: Array<[Waiter, Taken[]]> = [];
    for (const w of this.waiting.values()) {
      if (w.req.signal.aborted || !w.req.topics.some((t) => topics.has(t))) continue;
      try {
        const rows = this.savepoint(() => this.takeTx(w.req, []));
        if (rows.length > 0) served.push([w, rows]);
      } catch {
        // left to its own take
      }
    }
    if (served.length === 0) return nothing;
    return () => {
      for (const [w, rows] of served) w.done(rows);
    };
  }

  /** Claims under the write lock; decoding waits until the lock is released (it is CPU work). */
  private async take(req: ReadRequest, ack: Delivery[]): Promise<Delivery[]> {
    return this.deliveries(req, await this.st.write(() => this.takeTx(req, ack)));
  }

  private deliveries(req: ReadRequest, rows: Taken[]): Delivery[] {
    const out = new Array<Delivery>(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = delivery(rows[i].topic, rows[i].seq, rows[i].attempts, rows[i].body, rows[i].size, req.maxBytes);
    return out;
  }

  private takeTx(req: ReadRequest, ack: Delivery[]): Taken[] {
    const s = this.st.s;
    const gid = this.st.gid(req.group);
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
    if ((this.st.seen.get(key) ?? 0) < now - 1000) {
      s.consumerSeen.run(req.group, req.consumer, now); // stats' liveness: once a second is enough
      this.st.seen.set(key, now);
    }
    return out;
  }

  /**
   * Resolves at once when a read would take something (somethingFor), else on an in-process change
   * that gives it something (checked the same way: a publish to another topic costs a waiting
   * consumer two index probes, not a read), on a change made by another process (seen through the WAL watch, or by polling when the file is
   * not watched), at blockMs, or on abort. A WAL change counts only when another connection has
   * committed since the wait began (PRAGMA data_version, which this connection's own commits leave
   * as it is), and then only when somethingFor finds something (other groups' events change the
   * WAL too). The WAL change may be seen before the writer has published its commit to readers (it
   * writes the WAL, then the WAL index), so one that shows nothing new is looked at again on the
   * next turn of the event loop and RECHECK_MS later. While watched, the poll runs only every
   * WATCHED_POLL_MS as a safety net: an idle consumer does no work between commits.
   */
  private waitForChange(req: ReadRequest, topics: string): Promise<Taken[] | undefined> {
    const who = `${req.group}\n${req.consumer}`;
    if (this.woken.delete(who) || req.signal.aborted) return Promise.resolve(undefined);
    const { wakeups } = this.st;
    const { emitter } = wakeups;
    const watched = wakeups.watched;
    let version: unknown;
    try {
      // The version first: a commit landing between the two is then seen either way.
      version = this.st.s.dataVersion.get();
      if (this.somethingFor(req, topics)) return Promise.resolve(undefined);
    } catch {
      return Promise.resolve(undefined); // the store was busy: let the caller try a read
    }
    return new Promise((resolve) => {
      let soon: NodeJS.Immediate | undefined;
      let later: NodeJS.Timeout | undefined;
      const done = (rows?: Taken[]) => {
        clearInterval(timer);
        clearTimeout(ends);
        clearImmediate(soon);
        clearTimeout(later);
        if (this.waiting.get(who) === waiter) this.waiting.delete(who);
        emitter.off('change', check);
        emitter.off('wal', onWal);
        req.signal.removeEventListener('abort', wake);
        resolve(rows);
      };
      const waiter: Waiter = { req, done };
      const wake = () => done();
      /** True when it ended the wait. */
      const check = (): boolean => {
        try {
          if (this.somethingFor(req, topics)) return wake(), true;
        } catch {
          return wake(), true; // the store was busy: let the caller try a read
        }
        return false;
      };
      /** check(), when another connection committed since the last look. */
      const committed = (): boolean => {
        let now: unknown;
        try {
          now = this.st.s.dataVersion.get();
        } catch {
          return wake(), true;
        }
        if (now === version) return false;
        version = now;
        return check();
      };
      const onWal = () => {
        if (!wakeups.watched) return wake(); // the watch failed: the next wait polls
        // Every change is looked at (one pragma): a recheck already due must not delay a commit that lands meanwhile.
        if (committed() || soon !== undefined || later !== undefined) return;
        // The writer is usually microseconds from publishing its commit: look again on the next turn, then RECHECK_MS later.
        soon = setImmediate(() => {
          soon = undefined;
          if (!committed()) later = setTimeout(() => ((later = undefined), committed()), RECHECK_MS);
        });
      };
      const timer = setInterval(check, watched ? Math.max(this.pollMs, WATCHED_POLL_MS) : this.pollMs);
      const ends = setTimeout(wake, req.blockMs);
      emitter.on('change', check);
      if (watched) emitter.on('wal', onWal);
      this.waiting.set(who, waiter);
      req.signal.addEventListener('abort', wake);
    });
  }

  /** Whether a read by `req` would take something now: an event past the group's cursor on one of its topics, or a delivery to take again. */
  private somethingFor(req: ReadRequest, topics: string): boolean {
    const { s } = this.st;
    return s.anyNew.get(topics, req.group) !== undefined || s.anyAvailable.get(this.st.gid(req.group), Date.now()) !== undefined;
  }
}

/**
 * A stored event as a Delivery (its `ref` is the topic). `body` and `size` as selected by BODY() (statements.ts): past
 * `maxBytes` the body is only its start (SQL cut it, so the whole never reached JavaScript) and is
 * not decoded.
 */
export function delivery(topic: string, seq: number, attempts: number, body: string, size: number, maxBytes: number): Delivery {
  if (size > maxBytes) {
    const big = oversize(body, size, maxBytes);
    return { topic, position: String(seq), attempts, event: null, raw: big.raw, malformed: big.malformed, oversize: true, ref: topic };
  }
  const event = decodeEvent(body);
  return typeof event === 'string'
    ? { topic, position: String(seq), attempts, event: null, raw: body, malformed: event, ref: topic }
    : { topic, position: String(seq), attempts, event, raw: body, ref: topic };
}
