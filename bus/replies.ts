/**
 * Reply topics' end (requests.ts makes them): a bus drops its own when it closes, and any bus'
 * housekeeping sweeps those whose bus is gone without closing (crashed, killed). A reply topic is
 * read by one group of its own name, whose consumer (the requesting bus' reply subscription) sends
 * a heartbeat every HEARTBEAT_MS while that bus lives: a reply topic none of whose consumers has
 * been heard of for `replyTopicIdleMs` is an orphan. It is removed only once a second sweep, at
 * least RECHECK_MS after the one that first found it idle, still finds it so: a brand-new topic
 * (created just before its first heartbeat) or a bus just back from a store outage (its heartbeats
 * failed meanwhile) is heard of again by then. A keyed group's reply topic (KEYED_REPLY_PREFIX,
 * bus/keyed/requests.ts) is never swept: it is read by the group itself, not by a bus, and a reply
 * to a durable request may come while no consumer of the group runs (its owner crashed, restarting).
 */
import type { Logger } from 'pino';
import type { Driver } from './driver.js';
import { KEYED_REPLY_PREFIX, REPLY_PREFIX } from './event.js';
import { errForLog } from './thrown.js';

/** A reply topic found idle is removed by the first sweep at least this long after (see above). */
export const RECHECK_MS = 3000;

export class ReplySweeper {
  /** Reply topics found idle, and when first. */
  private readonly idle = new Map<string, number>();
  private running: Promise<number> | null = null;

  constructor(
    private readonly driver: Driver,
    /** This bus' own reply topic: never swept (its close drops it). */
    private readonly own: string,
    private readonly idleMs: number,
    private readonly log: Logger,
  ) {}

  /** One sweep (the one under way, if any): resolves how many orphaned reply topics it removed. */
  sweep(): Promise<number> {
    this.running ??= this.once().finally(() => (this.running = null));
    return this.running;
  }

  /**
   * The housekeeping timer's sweep: a failure (the store unreachable) is tried again at the next
   * one, logged at debug only (an outage is logged once by the connection, not by every timer).
   */
  async sweepQuietly(): Promise<void> {
    await this.sweep().catch((err) => this.log.debug({ err: errForLog(err) }, 'reply topics not swept (tried again at the next housekeeping)'));
  }

  private async once(): Promise<number> {
    const replies = (await this.driver.log.registered(REPLY_PREFIX)).filter((t) => t !== this.own && !t.startsWith(KEYED_REPLY_PREFIX));
    const now = Date.now();
    const removed: string[] = [];
    // Asked all at once: on Redis, one round trip's wait for them all rather than one each (every bus sweeps every reply topic).
    const idles = await Promise.all(replies.map((topic) => this.driver.groups.idleFor(topic)));
    for (const [i, topic] of replies.entries()) {
      const idle = idles[i];
      if (idle !== null && idle < this.idleMs) {
        this.idle.delete(topic);
        continue;
      }
      const since = this.idle.get(topic);
      if (since === undefined) this.idle.set(topic, now);
      else if (now - since >= RECHECK_MS) {
        this.idle.delete(topic);
        if (await this.driver.admin.dropTopic(topic)) removed.push(topic);
      }
    }
    const listed = new Set(replies);
    for (const topic of this.idle.keys()) if (!listed.has(topic)) this.idle.delete(topic);
    if (removed.length > 0) {
      this.log.info({ topics: removed, idleMs: this.idleMs }, `removed ${removed.length} reply topic(s) whose bus is gone (no heartbeat for ${this.idleMs} ms)`);
    }
    return removed.length;
  }
}
