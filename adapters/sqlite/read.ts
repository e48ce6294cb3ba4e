/**
 * The SQLite read path: acknowledge, take deliveries whose lease ran out (or that were released or
 * retried), then new events topic by topic, all in one IMMEDIATE transaction; when there is
 * nothing, wait for a change (in-process wake-up, a poll for other processes, Driver.reads.wake, abort).
 */
import type { Delivery, DriverReads, ReadRequest } from '../../bus/driver.js';
import { decodeEvent, oversize } from '../../bus/event.js';
import type { PendingRow, Taken } from './statements.js';
import type { SqliteStore } from './store.js';

export class ReadPath implements DriverReads {
  /** The wake-up of each consumer's read that is waiting; consumers woken while not waiting (see wake). */
  private readonly waiting = new Map<string, () => void>();
  private readonly woken = new Set<string>();

  constructor(
    private readonly st: SqliteStore,
    /** How often a waiting read looks for changes made by other processes. */
    private readonly pollMs: number,
  ) {}

  /** Driver.reads.read: see there. */
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

  /** Resolves on an in-process change, on a change seen by polling (other processes), at blockMs, or on abort. */
  private waitForChange(req: ReadRequest): Promise<void> {
    const who = `${req.group}\n${req.consumer}`;
    if (this.woken.delete(who)) return Promise.resolve();
    const { emitter } = this.st.wakeups;
    return new Promise((resolve) => {
      const end = Date.now() + req.blockMs;
      const seq = this.st.maxSeq();
      const done = () => {
        clearInterval(timer);
        if (this.waiting.get(who) === done) this.waiting.delete(who);
        emitter.off('change', done);
        req.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setInterval(() => {
        const now = Date.now();
        try {
          if (now >= end || this.st.maxSeq() !== seq || this.st.s.anyAvailable.get(this.st.gid(req.group), now) !== undefined) done();
        } catch {
          done(); // the store was busy: let the caller try a read
        }
      }, this.pollMs);
      emitter.on('change', done);
      this.waiting.set(who, done);
      req.signal.addEventListener('abort', done);
    });
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
