/**
 * A request whose type no consumer group reads waits out its whole timeout, and a durable one
 * (keyed ctx.request) keeps its handler parked that long: the first request of each type a bus
 * sends is looked up in the store's groups (the bus' stats) and, if no group reads the type, one
 * warning is logged: "no group reads X: the request will time out unless one starts". Once per
 * type per bus, whatever the answer, so a bus asks the store at most once per type; looks made
 * close together share one stats call. The look waits CHECK_AFTER_MS after the first request: a
 * pattern subscription (`tool.*`) joins a topic a request just created only once it sees it.
 */
import type { Logger } from 'pino';
import type { Driver } from './driver.js';

/** The look at the store's groups waits this long after a type's first request. */
export const CHECK_AFTER_MS = 2000;
/** One stats call serves the looks made within this long of it. */
const STATS_FRESH_MS = 5000;
/** Types remembered per bus; past this many, further types are not looked up (a bus making types on the fly). */
const MAX_TYPES = 10_000;

export class UnreadRequestTypes {
  private readonly seen = new Set<string>();
  private stats: { at: number; readers: Promise<Map<string, number>> } | null = null;

  constructor(
    private readonly driver: Pick<Driver, 'admin'>,
    private readonly log: Logger,
    /** The bus is closing: no look, no warning. */
    private readonly closed: () => boolean,
    private readonly afterMs = CHECK_AFTER_MS,
  ) {}

  /** A request of `type` was sent (bus.request or a durable ctx.request). */
  sent(type: string): void {
    if (this.seen.has(type) || this.seen.size >= MAX_TYPES) return;
    this.seen.add(type);
    setTimeout(() => void this.look(type), this.afterMs).unref();
  }

  private async look(type: string): Promise<void> {
    if (this.closed()) return;
    let readers: number;
    try {
      readers = (await this.readers()).get(type) ?? 0;
    } catch {
      return; // the store did not answer: its outage is logged where it matters, not here
    }
    if (readers === 0 && !this.closed()) this.log.warn({ type }, `no group reads ${type}: the request will time out unless one starts`);
  }

  /** Groups per topic, from one stats call shared by the looks made within STATS_FRESH_MS. */
  private readers(): Promise<Map<string, number>> {
    const now = Date.now();
    if (this.stats === null || now - this.stats.at > STATS_FRESH_MS) {
      const readers = this.driver.admin.stats().then((ts) => new Map(ts.map((t) => [t.type, t.groups.length])));
      readers.catch(() => {
        if (this.stats?.readers === readers) this.stats = null; // a failed call is not kept
      });
      this.stats = { at: now, readers };
    }
    return this.stats.readers;
  }
}
