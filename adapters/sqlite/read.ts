/**
 * The SQLite read path: acknowledge, take deliveries whose lease ran out (or that were released or
 * retried), then new events topic by topic, all in one IMMEDIATE transaction; when there is
 * nothing, wait for a change (in-process wake-up, the WAL watch or a poll for other processes,
 * Driver.reads.wake, abort). A read waiting on this connection is served by the next append itself
 * (handOff): what it would take of the appended topics when woken is taken inside the append's
 * transaction, so an in-process hop is one commit, not two, and no second wake-up.
 */
import type { Delivery, DriverReads, ReadRequest } from '../../bus/driver.js';
import { decodeEvent, oversize } from '../../bus/event.js';
import type { PendingRow, StoredRow, Taken } from './statements.js';
import type { SqliteStore } from './store.js';

/** While the file is watched (wakeups.ts), a waiting read still polls this often, in case a change was missed. */
export const WATCHED_POLL_MS = 1000;
/** After a WAL change that showed nothing new, the last look is this much later (the first is on the next turn; see waitForChange). */
const RECHECK_MS = 2;

/** A read waiting for a change; `done` ends the wait, with the rows an append handed it if any. */
interface Waiter {
  req: ReadRequest;
  /** req.topics as JSON, for somethingFor. */
  topics: string;
  /** The file was watched when the wait began: it answers WAL changes (else it polls). */
  watched: boolean;
  /** PRAGMA data_version when the wait last looked. */
  version: unknown;
  /** Polls, and ends the wait at blockMs. */
  timer: NodeJS.Timeout;
  /** Second looks after a WAL change that showed nothing (see waitForChange). */
  soon: NodeJS.Immediate | undefined;
  later: NodeJS.Timeout | undefined;
  done: (rows?: Taken[]) => void;
}

const nothing = () => {};

/** Thrown inside an append's transaction when serving a waiting read failed: the append is rolled back and runs again without serving (events.ts). */
export class HandOffFailed extends Error {
  constructor(cause: unknown) {
    super(`serving a waiting read in the append's transaction failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** What an append stored, for the reads it serves: the topics, and each row whose sequence number it knows, by that number. */
interface Appended {
  topics: Set<string>;
  rows: Map<number, StoredRow>;
}

export class ReadPath implements DriverReads {
  /** Each consumer's read that is waiting; consumers woken while not waiting (see wake). */
  private readonly waiting = new Map<string, Waiter>();
  private readonly woken = new Set<string>();
  /** Every wait, for the listeners below: one listener each on the file's wake-ups and on each signal, not one per wait (adding and removing them was a tenth of a hop). */
  private readonly all = new Set<Waiter>();
  private readonly signals = new WeakSet<AbortSignal>();
  constructor(
    private readonly st: SqliteStore,
    /** How often a waiting read looks for changes made by other processes when the file is not watched (SqliteBusOptions.pollMs). */
    private readonly pollMs: number,
  ) {
    st.handOff = (appended) => this.handOff(appended);
    st.serving = () => this.waiting.size > 0;
    st.wakeups.emitter.on('change', this.onChange);
    st.wakeups.emitter.on('wal', this.onWal);
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
   * Called inside an append's transaction (SqliteStore.handOff) with the rows it stored: takes, for
   * each read waiting on this connection for one of their topics, what it would take of those
   * topics once woken (other topics are left to its next read), claiming the rows the append
   * stored without reading them back. A failure throws HandOffFailed: the append is rolled back
   * with every claim and runs again without serving (no savepoint per read: one would cost about a
   * tenth of a hop, for a failure that does not happen outside a broken store). Returns what hands
   * the rows over, called right after the commit (SqliteStore.write's `committed`, before an abort
   * can end a wait empty-handed).
   */
  private handOff(stored: readonly StoredRow[]): () => void {
    if (this.waiting.size === 0 || stored.length === 0) return nothing;
    const appended: Appended = { topics: new Set(), rows: new Map() };
    for (const r of stored) {
      appended.topics.add(r.topic);
      if (r.seq !== 0) appended.rows.set(r.seq, r);
    }
    const served: Array<[Waiter, Taken[]]> = [];
    for (const w of this.waiting.values()) {
      if (w.req.signal.aborted || !w.req.topics.some((t) => appended.topics.has(t))) continue;
      let rows: Taken[];
      try {
        rows = this.takeTx(w.req, [], appended);
      } catch (err) {
        throw new HandOffFailed(err);
      }
      if (rows.length > 0) served.push([w, rows]);
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

  /**
   * Acknowledges `ack`, then claims for `req`: deliveries to take again, then new events. With
   * `appended` (a hand-off), new events only of the appended topics, and those rows from memory
   * when they are all the topic has past the group's cursor.
   */
  private takeTx(req: ReadRequest, ack: Delivery[], appended?: Appended): Taken[] {
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
      let rows: { seq: number; body: string; size: number }[];
      if (appended !== undefined) {
        if (!appended.topics.has(topic)) continue;
        const seqs = s.newSeqs.all(req.group, topic, req.max - out.length) as number[];
        if (seqs.length === 0) continue;
        rows = fromMemory(seqs, appended.rows) ?? (s.newEvents.all(topic, seqs[0] - 1, seqs.length, max) as typeof rows);
      } else {
        const cursor = (s.cursorGet.get(req.group, topic) as { seq: number } | undefined)?.seq;
        if (cursor === undefined) continue;
        rows = s.newEvents.all(topic, cursor, req.max - out.length, max) as typeof rows;
      }
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
    const watched = wakeups.watched;
    let version: unknown;
    try {
      // The version first: a commit landing between the two is then seen either way.
      version = this.st.s.dataVersion.get();
      if (this.somethingFor(req, topics)) return Promise.resolve(undefined);
    } catch {
      return Promise.resolve(undefined); // the store was busy: let the caller try a read
    }
    this.listen(req.signal);
    return new Promise((resolve) => {
      const w: Waiter = {
        req,
        topics,
        watched,
        version,
        timer: undefined!,
        soon: undefined,
        later: undefined,
        done: (rows) => {
          clearTimeout(w.timer);
          if (w.soon !== undefined) clearImmediate(w.soon);
          if (w.later !== undefined) clearTimeout(w.later);
          this.all.delete(w);
          if (this.waiting.get(who) === w) this.waiting.delete(who);
          resolve(rows);
        },
      };
      // One timer polls and ends the wait at blockMs (while watched, the poll is as long as a read's block).
      const poll = watched ? Math.max(this.pollMs, WATCHED_POLL_MS) : this.pollMs;
      const end = performance.now() + req.blockMs;
      const tick = () => {
        const left = end - performance.now();
        if (left < 1) return w.done();
        if (!this.check(w)) w.timer = setTimeout(tick, Math.min(poll, left));
      };
      w.timer = setTimeout(tick, Math.min(poll, req.blockMs));
      this.all.add(w);
      this.waiting.set(who, w);
    });
  }

  /** Ends every wait on `signal` when it aborts: one listener a signal (a consumer passes the same one to every read), not one a wait. */
  private listen(signal: AbortSignal): void {
    if (this.signals.has(signal)) return;
    this.signals.add(signal);
    signal.addEventListener(
      'abort',
      () => {
        for (const w of this.all) if (w.req.signal === signal) w.done();
      },
      { once: true },
    );
  }

  /** A change in this process: every wait looks (somethingFor). */
  private readonly onChange = (): void => {
    for (const w of this.all) this.check(w);
  };

  /** The WAL changed: every wait that was armed while the file was watched looks, if another connection committed. */
  private readonly onWal = (): void => {
    for (const w of this.all) {
      if (!w.watched) continue;
      if (!this.st.wakeups.watched) {
        w.done(); // the watch failed: the next wait polls
        continue;
      }
      // Every change is looked at (one pragma): a recheck already due must not delay a commit that lands meanwhile.
      if (this.committed(w) || w.soon !== undefined || w.later !== undefined) continue;
      // The writer is usually microseconds from publishing its commit: look again on the next turn, then RECHECK_MS later.
      w.soon = setImmediate(() => {
        w.soon = undefined;
        if (!this.committed(w)) {
          w.later = setTimeout(() => {
            w.later = undefined;
            this.committed(w);
          }, RECHECK_MS);
        }
      });
    }
  };

  /** True when it ended the wait: the read has something to take (or the store was busy: the caller tries a read). */
  private check(w: Waiter): boolean {
    try {
      if (!this.somethingFor(w.req, w.topics)) return false;
    } catch {
      // busy: let the caller try
    }
    w.done();
    return true;
  }

  /** check(), when another connection committed since the wait last looked. */
  private committed(w: Waiter): boolean {
    let now: unknown;
    try {
      now = this.st.s.dataVersion.get();
    } catch {
      w.done();
      return true;
    }
    if (now === w.version) return false;
    w.version = now;
    return this.check(w);
  }

  /** The bus is closing: stops listening to the file's wake-ups (shared with other buses on it). */
  close(): void {
    this.st.wakeups.emitter.off('change', this.onChange);
    this.st.wakeups.emitter.off('wal', this.onWal);
  }

  /** Whether a read by `req` would take something now: an event past the group's cursor on one of its topics, or a delivery to take again. */
  private somethingFor(req: ReadRequest, topics: string): boolean {
    const { s } = this.st;
    return s.anyNew.get(topics, req.group) !== undefined || s.anyAvailable.get(this.st.gid(req.group), Date.now()) !== undefined;
  }
}

/**
 * The rows an append stored at `seqs`, with their UTF-8 sizes (newEvents' shape; `delivery` cuts
 * one past `maxBytes`), or null when one of them is not the append's (another process' event, or
 * a row of a multi-row INSERT): then they are read back.
 */
function fromMemory(seqs: number[], rows: Map<number, StoredRow>): { seq: number; body: string; size: number }[] | null {
  const out = new Array<{ seq: number; body: string; size: number }>(seqs.length);
  for (let i = 0; i < seqs.length; i++) {
    const r = rows.get(seqs[i]);
    if (r === undefined) return null;
    out[i] = { seq: r.seq, body: r.body, size: Buffer.byteLength(r.body) };
  }
  return out;
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
