// One subscription over a Driver, assembled from its parts around one shared state
// (consumer-state.ts): the read loop (read-loop.ts), the scheduler that holds, starts and settles
// deliveries (scheduler.ts; the handler call in handler-call.ts, retries and dead letters in
// retries.ts), a keyed subscription's tenure and waits (keyed/slots.ts), and the close
// (consumer-close.ts). Here: starting it (heartbeats, lease renewal, topic refresh) and its
// Subscription surface.
import type { Logger } from 'pino';
import type { Handler, Subscription } from './contract.js';
import type { KeyedStats } from './contract-delivery.js';
import { HEARTBEAT_MS, type Driver } from './driver.js';
import type { ResolvedSubscribeOptions } from './options.js';
import { TOPIC_REFRESH_MS } from './topics.js';
import { invalid } from './errors.js';
import type { KeyedTenure } from './keyed/tenure.js';
import { keyedStats, startKeyed } from './keyed/slots.js';
import { ConsumerState } from './consumer-state.js';
import type { Reply } from './handler-call.js';
import { Scheduler } from './scheduler.js';
import { readLoop } from './read-loop.js';
import { shutdown } from './consumer-close.js';
import type { StoreSilence } from './closing.js';
import type { RequestLink } from './requests.js';

export type { Reply } from './handler-call.js';

/** A subscription: fetches no more than it can start, and performs what decide.ts decides about each delivery. */
export class Consumer implements Subscription {
  readonly group: string;
  readonly consumer: string;
  private readonly s: ConsumerState;
  private readonly sched: Scheduler;
  private closed: Promise<void> | null = null;

  constructor(
    driver: Driver,
    o: ResolvedSubscribeOptions,
    /** The bus' maxPayloadBytes, also applied to what is read. */
    maxBytes: number,
    handler: Handler,
    log: Logger,
    private readonly onClosed: (c: Consumer) => void,
    reply: Reply,
    silence: StoreSilence,
    /** The bus' publish, in-memory request and observers, for keyed durable requests (keyed/requests.ts). */
    link: RequestLink,
  ) {
    this.group = o.group;
    this.consumer = o.consumer;
    if (o.key === undefined && o.waitsFor.length > 0) throw invalid('INVALID_OPTION', `invalid waitsFor for group ${o.group}: ctx.waitFor is for keyed subscriptions only (set key)`);
    const s = (this.s = new ConsumerState(driver, o, maxBytes, log, silence));
    this.sched = new Scheduler(s, handler, reply);
    if (o.key !== undefined) {
      if (driver.state === undefined) throw invalid('INVALID_OPTION', `invalid key for group ${o.group}: this store has no keyed state`);
      startKeyed(s, driver.state, o.key, this.sched, link);
    }
  }

  /** Keyed subscriptions: the group's ownership and the keys' state (keyed/tenure.ts, owner.ts); null otherwise. */
  get keyed(): KeyedTenure | null {
    return this.s.keyed;
  }

  /** Closed without waiting for store calls that did not answer: their later errors are not logged. */
  get gaveUpOnStore(): boolean {
    return this.s.gaveUpOnStore;
  }

  async start(): Promise<void> {
    const s = this.s;
    await s.topics.refresh();
    await this.heartbeat();
    s.loopDone = readLoop(s, this.sched);
    s.timers.push(setInterval(() => void this.heartbeat(), HEARTBEAT_MS));
    const renewEvery = Math.max(10, Math.floor(s.o.claimIdleMs / 3));
    const owner = s.keyed?.owner;
    s.timers.push(setInterval(() => void (s.abandoned || (s.held.renew(owner?.unacknowledged()), owner?.renew())), renewEvery));
    if (s.topics.patterned) s.timers.push(setInterval(() => this.refreshTopics(), TOPIC_REFRESH_MS));
    for (const t of s.timers) t.unref();
  }

  /** A topic the bus in this process just published to for the first time: read it now if it matches. */
  topicPublished(topic: string): void {
    if (!this.s.closing && this.s.topics.wants(topic)) this.refreshTopics();
  }

  private refreshTopics(): void {
    this.s.topics.refresh().catch((err) => this.s.storeError('topic refresh', err));
  }

  keyedStats(): KeyedStats | null {
    return keyedStats(this.s);
  }

  /** Tells the store this consumer is alive (stats count live consumers); a failure waits for the next beat. */
  private heartbeat(): Promise<void> {
    const s = this.s;
    s.beat = s.driver.groups.heartbeat(this.group, this.consumer).catch(() => {});
    return s.beat;
  }

  close(options: { drain?: boolean } = {}): Promise<void> {
    this.closed ??= this.closeOnce(options.drain !== false);
    return this.closed;
  }

  /** See shutdown (consumer-close.ts); then the bus forgets this subscription. */
  private async closeOnce(drain: boolean): Promise<void> {
    await shutdown(this.s, drain);
    this.onClosed(this);
  }
}
