/**
 * The SQLite read path: acknowledge, take deliveries whose lease ran out (or that were released or
 * retried), then new events topic by topic, all in one IMMEDIATE transaction; when there is
 * nothing, wait for a change (in-process wake-up, the WAL watch or a poll for other processes,
 * wakeRead, abort).
 */
import type { Delivery, ReadRequest } from '../../bus/driver.js';
import { decodeEvent, oversize } from '../../bus/event.js';
import type { PendingRow, Taken } from './statements.js';
import type { SqliteStore } from './store.js';

/** While the file is watched (wakeups.ts), a waiting read still polls this often, in case a change was missed. */
export const WATCHED_POLL_MS = 1000;
/** After a WAL change whose check found nothing, the check runs once more this much later (see waitForChange). */
const RECHECK_MS = 2;

export class ReadPath {
  /** The wake-up of each consumer's read that is waiting; consumers woken while not waiting (see wake). */
  private readonly waiting = new Map<string, () => void>();
  private readonly woken = new Set<string>();

  constructor(
    private readonly st: SqliteStore,
    /** How often a waiting read looks for changes made by other processes. */
    private readonly pollMs: number,
  ) {}

  /** Driver.read: see there. */
  async read(req: ReadRequest): Promise<Delivery[]> {
    const got = await this.take(req, req.ack);
    if (got.length > 0 || req.signal.aborted) return got;
    await this.waitForChange(req);
    return req.signal.aborted ? [] : this.take(req, []);
  }

  /** Ends the consumer's wait now, or, when it is not waiting (its read may hold the old topics), its next one. */
  wake(group: string, consumer: string): void {
    const who = `${group}\n${consumer}`;
    const w = this.waiting.get(who);
    if (w) w();
    else this.woken.add(who);
  }

  /** Claims under the write lock; decoding waits until the lock is released (it is CPU work). */
  private async take(req: ReadRequest, ack: Delivery[]): Promise<Delivery[]> {
    const rows = await this.st.write(() => this.takeTx(req, ack));
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
   * Resolves on an in-process change, on a change made by another process (seen through the WAL
   * watch, or by polling when the file is not watched), at blockMs, or on abort. Another process'
   * change is checked first (somethingFor): this process' own commits and other groups' events
   * change the WAL too. The check right after a WAL change may run before the writer has published
   * its commit to readers (it writes the WAL, then the WAL index), so a check that finds nothing
   * looks once more RECHECK_MS later. While watched, the poll runs only every WATCHED_POLL_MS as a
   * safety net: an idle consumer does no work between commits.
   */
  private waitForChange(req: ReadRequest): Promise<void> {
    const who = `${req.group}\n${req.consumer}`;
    if (this.woken.delete(who)) return Promise.resolve();
    const { wakeups } = this.st;
    const { emitter } = wakeups;
    const watched = wakeups.watched;
    const topics = JSON.stringify(req.topics);
    return new Promise((resolve) => {
      let recheck: NodeJS.Timeout | undefined;
      const done = () => {
        clearInterval(timer);
        clearTimeout(ends);
        clearTimeout(recheck);
        if (this.waiting.get(who) === done) this.waiting.delete(who);
        emitter.off('change', done);
        emitter.off('wal', onWal);
        req.signal.removeEventListener('abort', done);
        resolve();
      };
      /** True when it ended the wait. */
      const check = (): boolean => {
        try {
          if (this.somethingFor(req, topics)) return done(), true;
        } catch {
          return done(), true; // the store was busy: let the caller try a read
        }
        return false;
      };
      const onWal = () => {
        if (!wakeups.watched) return done(); // the watch failed: the next wait polls
        if (check() || recheck !== undefined) return;
        recheck = setTimeout(() => {
          recheck = undefined;
          check();
        }, RECHECK_MS);
      };
      const timer = setInterval(check, watched ? Math.max(this.pollMs, WATCHED_POLL_MS) : this.pollMs);
      const ends = setTimeout(done, req.blockMs);
      emitter.on('change', done);
      if (watched) emitter.on('wal', onWal);
      this.waiting.set(who, done);
      req.signal.addEventListener('abort', done);
    });
  }

  /** Whether a read by `req` would take something now: an event past the group's cursor on one of its topics, or a delivery to take again. */
  private somethingFor(req: ReadRequest, topics: string): boolean {
    const { s } = this.st;
    return s.anyNew.get(topics, req.group) !== undefined || s.anyAvailable.get(this.st.gid(req.group), Date.now()) !== undefined;
  }
}

/**
 * A stored event as a Delivery. `body` and `size` as selected by BODY() (statements.ts): past
 * `maxBytes` the body is only its start (SQL cut it, so the whole never reached JavaScript) and is
 * not decoded.
 */
export function delivery(topic: string, seq: number, attempts: number, body: string, size: number, maxBytes: number): Delivery {
  if (size > maxBytes) {
    const big = oversize(body, size, maxBytes);
    return { topic, position: String(seq), attempts, event: null, raw: big.raw, malformed: big.malformed, oversize: true };
  }
  const event = decodeEvent(body);
  return typeof event === 'string'
    ? { topic, position: String(seq), attempts, event: null, raw: body, malformed: event }
    : { topic, position: String(seq), attempts, event, raw: body };
}
