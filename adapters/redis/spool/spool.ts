/**
 * The spool for the Redis bus: while Redis is unreachable, publishes are written to the spool file
 * (file.ts) and a forwarder sends them on once it is back.
 *
 * Order per topic: a publish goes to the spool when Redis is unreachable, and also while earlier
 * events of any of its topics are still spooled, so a topic's events reach Redis in publish order.
 * The forwarder sends from the head of the spool in spool order, each event with its original id and
 * source through the dedup check, and deletes it only after Redis confirmed it: a forward repeated
 * after a crash is stored once within the dedup window. Nothing is dropped: past maxBytes a publish
 * rejects with SPOOL_FULL.
 */
import type { Logger } from 'pino';
import type { AppendEntry, AppendHas } from '../../../bus/driver.js';
import { ConnectionError } from '../../../bus/errors.js';
import { formatBytes } from '../../../bus/pressure.js';
import type { BusSpool, SpoolStats } from '../../../bus/spool.js';
import { errForLog } from '../../../bus/thrown.js';
import { SpoolFile } from './file.js';
import type { ResolvedSpoolOptions } from './options.js';
import { isUnreachable } from './unreachable.js';

/** Events per forward round trip. */
const FORWARD_BATCH = 500;
/** The forwarder's first wait after a failed forward, doubled up to MAX_RETRY_MS (a reconnect wakes it at once). */
const RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

export class RedisSpool implements BusSpool {
  /** Events spooled per topic now: a publish to one of these topics is spooled behind them. */
  private readonly topics: Map<string, number>;
  private count = 0;
  private bytes: number;
  private oldest: number | null;
  /** Set by an unreachable Redis, cleared by a forward that went through: meanwhile every publish is spooled. */
  private down = false;
  private spooled = 0;
  private forwarded = 0;
  /** When the spool last became non-empty (for the line logged when it is empty again); null while empty. */
  private since: number | null = null;
  private forwardedSince = 0;
  private warnedAge = false;
  private lastRefusal = '';
  private forwarding: Promise<void> | null = null;
  /** A forward loop runs; cleared synchronously as it ends, so a write right after starts another. */
  private running = false;
  private wake: (() => void) | null = null;
  private closed = false;
  private stored: (entries: AppendEntry[]) => void = () => {};

  constructor(
    private readonly file: SpoolFile,
    /** Appends to Redis (the driver's guarded log.append on the publish connection). */
    private readonly send: (entries: AppendEntry[], has?: AppendHas) => Promise<void>,
    private readonly o: ResolvedSpoolOptions,
    /** The bus' dedup window: a spooled event older than it is no longer recognised as a copy of one Redis holds. */
    private readonly dedupWindowMs: number,
    private readonly log: Logger,
  ) {
    const t = file.totals();
    this.topics = t.topics;
    for (const n of t.topics.values()) this.count += n;
    this.bytes = t.bytes;
    this.oldest = t.oldest;
  }

  /** Redis is reachable again (the publish connection is ready): forward now rather than at the next retry. */
  ready(): void {
    this.wake?.();
  }

  /**
   * The bus started while Redis was unreachable, and logged so: publishes go to the spool without
   * trying Redis (no second warning) until the bus has reached it (opened).
   */
  unreachableAtStart(): void {
    this.down = true;
    this.since ??= Date.now();
  }

  /**
   * The bus reached Redis for the first time and its start checks ran (passed, or refused): with
   * nothing spooled, publishes try Redis again; else the forwarder tries now.
   */
  opened(): void {
    if (this.count === 0 && !this.running) {
      this.down = false;
      this.since = null;
    } else this.kick();
    this.wake?.();
  }

  start(stored: (entries: AppendEntry[]) => void): void {
    this.stored = stored;
    if (this.count === 0) return;
    this.since = Date.now();
    this.log.info({ spool: this.file.path, events: this.count, bytes: this.bytes }, `spool ${this.file.path} holds ${this.count} event(s) from an earlier run: forwarding them to Redis`);
    this.kick();
  }

  async append(entries: AppendEntry[], has?: AppendHas): Promise<boolean> {
    if (!this.down && !entries.some((e) => this.topics.has(e.topic))) {
      try {
        await this.send(entries, has);
        return false;
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        this.down = true;
        this.write(entries, err);
        return true;
      }
    }
    this.write(entries, null);
    return true;
  }

  stats(): SpoolStats {
    return {
      path: this.file.path,
      spooled: this.spooled,
      forwarded: this.forwarded,
      events: this.count,
      bytes: this.bytes,
      maxBytes: this.o.maxBytes,
      oldestAgeSeconds: this.oldest === null ? null : Math.max(0, (Date.now() - this.oldest) / 1000),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.forwarding;
    this.file.close();
  }

  /** Writes a call's entries to the spool in one transaction; `cause`: the error that started spooling, if this call met it. */
  private write(entries: AppendEntry[], cause: unknown): void {
    const sizes = entries.map(SpoolFile.size);
    const add = sizes.reduce((a, b) => a + b, 0);
    if (this.bytes + add > this.o.maxBytes) {
      throw new ConnectionError(
        'SPOOL_FULL',
        `${this.down ? 'Redis is unreachable' : 'earlier events of this topic wait in the spool'} and the spool ${this.file.path} is full: ${formatBytes(this.bytes)} spooled (${this.count} events) + ${formatBytes(add)} of this publish > maxBytes ${this.o.maxBytes} (spool.maxBytes); nothing was stored`,
        cause === null ? {} : { cause },
      );
    }
    const now = Date.now();
    this.file.add(entries, now, sizes);
    for (const e of entries) this.topics.set(e.topic, (this.topics.get(e.topic) ?? 0) + 1);
    this.count += entries.length;
    this.bytes += add;
    this.spooled += entries.length;
    this.oldest ??= now;
    if (this.since === null) {
      this.since = now;
      this.forwardedSince = 0;
      this.log.warn(
        { spool: this.file.path, ...(cause === null ? {} : { err: errForLog(cause) }) },
        `Redis unreachable: spooling publishes to ${this.file.path} until it is back (they are forwarded then, in order per topic)`,
      );
    }
    this.kick();
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = true;
    this.forwarding = this.forward().catch((err) => this.log.error({ spool: this.file.path, err: errForLog(err) }, 'spool forwarder stopped (it starts again with the next spooled publish or bus)'));
  }

  /** Forwards from the head until the spool is empty (or the bus closes); logs once it is empty again. */
  private async forward(): Promise<void> {
    try {
      await this.forwardHead();
    } finally {
      this.running = false; // synchronously as the loop ends: a write from now on starts another
    }
    if (this.count === 0 && this.since !== null) {
      const ms = Date.now() - this.since;
      this.log.info({ spool: this.file.path, forwarded: this.forwardedSince, ms }, `spool empty again: ${this.forwardedSince} event(s) forwarded to Redis (spooling began ${(ms / 1000).toFixed(1)} s ago)`);
      this.since = null;
      this.warnedAge = false;
    }
  }

  /** Sends the head, then deletes it once Redis confirmed it; waits between failed tries (a reconnect ends the wait). */
  private async forwardHead(): Promise<void> {
    let wait = RETRY_MS;
    while (!this.closed) {
      const head = this.file.first(FORWARD_BATCH);
      if (head.length === 0) return;
      this.checkAge();
      const entries = head.map((s) => s.entry);
      try {
        await this.send(entries);
      } catch (err) {
        // Redis answered with an error: it is reachable, so other topics' publishes go to it again.
        this.down = isUnreachable(err);
        if (!this.down) this.refused(err);
        await this.pause(wait);
        wait = Math.min(wait * 2, MAX_RETRY_MS);
        continue;
      }
      wait = RETRY_MS;
      this.file.remove(head[head.length - 1].seq);
      for (const s of head) {
        const n = this.topics.get(s.entry.topic)! - 1;
        if (n > 0) this.topics.set(s.entry.topic, n);
        else this.topics.delete(s.entry.topic);
        this.bytes -= s.bytes;
      }
      this.count -= head.length;
      this.forwarded += head.length;
      this.forwardedSince += head.length;
      this.oldest = this.count === 0 ? null : this.file.oldest();
      this.down = false;
      this.lastRefusal = '';
      this.stored(entries);
    }
  }

  /**
   * Redis answered the forward with an error (the topic's key holds another type, say): the events
   * stay in the spool, in order, and the forward is tried again; logged once per distinct error.
   */
  private refused(err: unknown): void {
    const what = String((err as Error)?.message ?? err);
    if (what === this.lastRefusal) return;
    this.lastRefusal = what;
    this.log.error({ spool: this.file.path, err: errForLog(err) }, 'Redis refused events forwarded from the spool: they stay spooled (in order) and are tried again');
  }

  /** Once per spell: the oldest spooled event is older than the dedup window, past which a copy Redis already holds is not recognised. */
  private checkAge(): void {
    if (this.warnedAge || this.oldest === null || Date.now() - this.oldest <= this.dedupWindowMs) return;
    this.warnedAge = true;
    this.log.warn(
      { spool: this.file.path, oldestAgeMs: Date.now() - this.oldest, dedupWindowMs: this.dedupWindowMs },
      `the oldest spooled event is older than the dedup window (dedupWindowMs ${this.dedupWindowMs}): a copy Redis already holds (the same id published before, a publish that failed after Redis stored it) is no longer recognised and may be stored twice`,
    );
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
