// The topics one subscription reads: its exact types, and the stored topics its patterns match as
// they appear. Taking a topic on creates the group on it (Driver.groups.create).
import type { Logger } from 'pino';
import type { Driver } from './driver.js';
import type { ResolvedSubscribeOptions } from './options.js';
import { expandTypes, matches } from './event.js';

/**
 * How often a pattern subscription asks the store for new topics (drivers answer cheaply when
 * nothing changed: a SCARD on Redis, a COUNT on SQLite). A topic first published by this bus is
 * seen at once (Consumer.topicPublished); one published elsewhere within this interval, and the
 * read waiting on the old topics is woken (Driver.reads.wake), so its first event arrives within about this long.
 */
export const TOPIC_REFRESH_MS = 100;

export class GroupTopics {
  /** The topics taken on so far, in that order. */
  list: string[] = [];
  /** True once the first refresh created the group (even with no topic yet: patterns matching nothing so far). */
  created = false;
  /** Some type is a pattern: the topics can grow. */
  readonly patterned: boolean;
  private refreshing: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    private readonly driver: Driver,
    private readonly o: Pick<ResolvedSubscribeOptions, 'group' | 'consumer' | 'types' | 'from'>,
    private readonly log: Logger,
  ) {
    this.patterned = o.types.some((t) => t.endsWith('*'));
  }

  /** Whether `topic`, just published by this bus, is one this subscription should take on now. */
  wants(topic: string): boolean {
    return this.created && !this.stopped && !this.list.includes(topic) && this.o.types.some((t) => t.endsWith('*') && matches(t, topic));
  }

  /** No refresh repeats after this (a subscription closing). */
  stop(): void {
    this.stopped = true;
  }

  /**
   * Takes on the topics the types match now. One refresh at a time (two at once could both take a
   * topic as new and list it twice); one asked for meanwhile runs after it, as it may have read the
   * topics before the new one was stored.
   */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.again = false;
        await this.takeNew();
      } while (this.again && !this.stopped);
    })().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  /**
   * Takes on `topic` besides the types (a keyed group's reply topic, keyed/requests.ts), the group
   * made on it at its earliest entry: nothing published to it before is skipped. Resolves at once
   * when it is taken already; one refresh or take at a time (see refresh).
   */
  async take(topic: string): Promise<void> {
    while (!this.list.includes(topic)) {
      if (this.refreshing) {
        await this.refreshing;
        continue;
      }
      this.refreshing = (async () => {
        await this.driver.groups.create(this.o.group, [topic], 'earliest');
        const started = this.created;
        this.list = [...this.list, topic];
        if (started) this.driver.reads.wake?.(this.o.group, this.o.consumer);
      })().finally(() => (this.refreshing = null));
      await this.refreshing;
    }
  }

  private async takeNew(): Promise<void> {
    const known = this.patterned ? await this.driver.log.topics() : [];
    const fresh = expandTypes(this.o.types, known).filter((t) => !this.list.includes(t));
    // The first call creates the group even with no topic yet (patterns matching nothing so far):
    // its start is now, so a topic that appears later is read from the subscribe on, not skipped.
    if (fresh.length === 0 && this.created) return;
    const { group, consumer } = this.o;
    const skipped = await this.driver.groups.create(group, fresh, this.o.from);
    if (skipped > 0) {
      // A new group at `latest` reads nothing already stored, and stats show it with lag 0: say so once.
      this.log.info(
        { group, types: fresh, skipped },
        `new group ${group} starts at the latest event: skipping ${skipped} earlier event${skipped === 1 ? '' : 's'} of ${fresh.join(', ')} (from: 'earliest' reads them)`,
      );
    }
    const started = this.created;
    this.created = true;
    this.list = [...this.list, ...fresh];
    // The read waiting now waits on the old topics: end it, so the next one reads the new ones too.
    if (started && fresh.length > 0) this.driver.reads.wake?.(group, consumer);
  }
}
