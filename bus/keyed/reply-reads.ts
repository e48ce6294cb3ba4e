/**
 * What a keyed group's owner has looked at on its reply topic (keyed/requests.ts), so that a durable
 * request's deadline is judged by when its reply was stored, not by when an owner read it:
 *
 * - A reply read past its request's deadline still counts if the store stored it before the
 *   deadline (storedBefore): a takeover after claimIdleMs, a slow read or a stopped owner do not
 *   eat into `timeoutMs`. "Stored" is the store's own stamp: Redis, the milliseconds of the stream
 *   entry id (the Redis server's clock at XADD); SQLite, the events row's `stored` column (the clock
 *   of the process that appended it). A reply stored at or after the deadline is late.
 * - A run finding its request past the deadline with no recorded reply does not throw before the
 *   owner looked at everything stored on the reply topic up to then (lookedAt): a read of the
 *   group's topics, the reply topic among them, sent at or after the deadline and reaching their end
 *   (fewer deliveries than asked for), and the replies it and earlier reads handed over recorded or
 *   dropped. The previous owner's pending replies are claimed with the takeover, before any re-run
 *   starts (tenure.ts takeMore). Such a read is asked for at once: the read in flight is woken and
 *   the next one does not block (read-loop.ts), so a timeout comes a round trip or two after the
 *   deadline, later only while the consumer reads nothing (every slot busy).
 */
import type { Delivery, Driver } from '../driver.js';

/** A run waiting for a look at the reply topic; `at`: a read sent at or after it counts. */
interface Look {
  readonly at: number;
  resolve(): void;
}

export class ReplyReads {
  /** Replies offered and not yet recorded or dropped (their store calls in flight). */
  private readonly inFlight = new Set<Promise<unknown>>();
  private looks: Look[] = [];

  constructor(
    private readonly driver: Driver,
    private readonly group: string,
    private readonly consumer: string,
  ) {}

  /** A run waits for a look: the read loop's next read does not block (read-loop.ts). */
  get wanted(): boolean {
    return this.looks.length > 0;
  }

  /** Whether the store stored the reply `d` before `deadline` (epoch ms, by the store's clock: see the file header). */
  async storedBefore(d: Delivery, deadline: number): Promise<boolean> {
    const [found] = await this.driver.log.range(d.topic, { from: { position: d.position }, to: { time: deadline - 1 }, after: null, limit: 1, maxBytes: 1 });
    return found !== undefined && found.position === d.position;
  }

  /** The store calls recording (or dropping) a reply offered: a look waits for them. Returns `p`. */
  track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => {});
    return p;
  }

  /**
   * A read sent at `sentAt` (epoch ms) came back and its deliveries were offered; `complete`: it
   * read the reply topic and reached the end of every topic it read. Ends the looks it satisfies.
   */
  read(sentAt: number, complete: boolean): void {
    if (!complete || this.looks.length === 0) return;
    const done = this.looks.filter((l) => l.at <= sentAt);
    if (done.length === 0) return;
    this.looks = this.looks.filter((l) => l.at > sentAt);
    const recording = Promise.allSettled([...this.inFlight]);
    for (const l of done) void recording.then(() => l.resolve());
  }

  /**
   * Resolves once a complete read sent at or after `at` came back and the replies offered until
   * then were recorded or dropped. Wakes the read in flight, so the next read goes out now.
   * `signal`: the waiter ended (a reply, an abort, a close, a lost tenure): the look is removed
   * (else `wanted` would keep reads from blocking until a complete read) and never resolves.
   */
  lookedAt(at: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return;
      const look: Look = { at, resolve };
      this.looks.push(look);
      signal?.addEventListener('abort', () => (this.looks = this.looks.filter((l) => l !== look)), { once: true });
      this.driver.reads.wake?.(this.group, this.consumer);
    });
  }
}
