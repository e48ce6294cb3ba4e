// What the parts of one subscription share (consumer.ts assembles them): the deliveries it holds
// and how many of them run, wait or are read ahead, its flags, and the one wake-up its waiting
// loops share. One plain object handed once to each part (scheduler.ts, handler-call.ts,
// retries.ts, read-loop.ts, consumer-close.ts, keyed/slots.ts): the parts read and write these
// fields directly, with no callback per event between them.
import type { Logger } from 'pino';
import type { Delivery, Driver } from './driver.js';
import type { ResolvedSubscribeOptions } from './options.js';
import { Batcher } from './batcher.js';
import { Outcomes } from './outcomes.js';
import { ReadAhead } from './read-ahead.js';
import { Holdings, type Held } from './held.js';
import { SubjectLanes } from './lanes.js';
import { GroupTopics } from './topics.js';
import type { StoreSilence } from './closing.js';
import type { KeyedTenure } from './keyed/tenure.js';
import type { KeyedWaits } from './keyed/waits.js';
import type { KeyedSteps } from './keyed/steps.js';
import type { KeyedRequests } from './keyed/requests.js';

export class ConsumerState {
  readonly group: string;
  readonly consumer: string;
  readonly held: Holdings;
  /** The subject lanes (orderBy 'subject', or keyed: the keys'); replaced when a keyed tenure ends. */
  lanes = new SubjectLanes<Held>();
  /** Keyed subscriptions: the group's ownership and the keys' state (keyed/tenure.ts, owner.ts); null otherwise. Set once, by the Consumer. */
  keyed: KeyedTenure | null = null;
  /** Keyed subscriptions: the handlers' durable waits (keyed/waits.ts); null otherwise. Set once, by the Consumer. */
  waits: KeyedWaits | null = null;
  /** Keyed subscriptions: the handlers' durable steps (keyed/steps.ts); null otherwise. Set once, by the Consumer. */
  steps: KeyedSteps | null = null;
  /** Keyed subscriptions: the handlers' durable requests (keyed/requests.ts); null otherwise. Set once, by the Consumer. */
  requests: KeyedRequests | null = null;
  /**
   * The deliveries of handlers inside ctx.waitFor or a durable ctx.request, with their count of each
   * in progress: a close gives them back uncounted (keyed/slots.ts waitParked).
   */
  readonly parked = new Map<Held, { waits: number; requests: number }>();
  /** Of `parked`, those in ctx.waitFor with no durable request out: they hold no concurrency slot (`waiting`). */
  private freed = 0;
  /** Of `parked`, those waiting for a durable request's reply (holding their slot; read-loop.ts reads their replies even with no slot free). */
  asking = 0;
  /** Failure replies to requests dead-lettered here, not yet published: a close waits for them. */
  readonly failureReplies = new Set<Promise<unknown>>();

  /**
   * Handlers inside ctx.waitFor (one however many waits it runs at once): they hold no concurrency
   * slot meanwhile. One with a durable request out holds its slot (a request in flight is work in
   * flight, as an in-memory request's), so it is not counted here.
   */
  get waiting(): number {
    return this.freed;
  }

  /**
   * `h`'s handler starts a wait (`request`: for a durable request's reply). Resolves whether it was
   * not parked before, and whether it now gives its slot up and did not before.
   */
  park(h: Held, request: boolean): { first: boolean; freed: boolean } {
    const p = this.parked.get(h) ?? { waits: 0, requests: 0 };
    const first = !this.parked.has(h);
    const was = p.waits > 0 && p.requests === 0;
    if (request && p.requests++ === 0) this.asking++;
    if (!request) p.waits++;
    this.parked.set(h, p);
    const is = p.waits > 0 && p.requests === 0;
    this.freed += Number(is) - Number(was);
    return { first, freed: is && !was };
  }

  /** Undoes one park(h, request); resolves whether `h` is parked no more, and whether it now gives its slot up and did not before. */
  unpark(h: Held, request: boolean): { last: boolean; freed: boolean } {
    const p = this.parked.get(h);
    if (p === undefined) return { last: true, freed: false };
    const was = p.waits > 0 && p.requests === 0;
    if (request && --p.requests === 0) this.asking--;
    if (!request) p.waits--;
    const is = p.waits > 0 && p.requests === 0;
    this.freed += Number(is) - Number(was);
    const last = p.waits + p.requests === 0;
    if (last) this.parked.delete(h);
    return { last, freed: is && !was };
  }
  readonly topics: GroupTopics;
  /** Acks wait here for the next read (which carries them) or the next setImmediate, whichever comes first. */
  readonly acks: Batcher<Delivery>;
  /** A read that does not wait for new events is on its way (readAhead): the acks wait to go with the next one. */
  readingOn = false;
  /** The read loop is handing a batch to its handlers: it reads next (carrying the acks) or kicks them. */
  dispatching = false;
  readonly out: Outcomes;
  /** Events to read beyond the free slots: the readAhead option, or following the handlers' pace. */
  readonly readAhead: ReadAhead;
  /** Deliveries started (counted at once, run from the next microtask) and not yet settled. */
  running = 0;
  /** Failed deliveries waiting for their retry (retries.ts). */
  retrying = 0;
  /** Read ahead: admitted, waiting for a free slot (Scheduler.schedule), started oldest first from `readyAt`. */
  ready: Held[] = [];
  readyAt = 0;
  /** close() was called: nothing new is read or started. */
  closing = false;
  /** Closed with handlers still running: their settling changes nothing any more. */
  abandoned = false;
  /** The read loop (read-loop.ts), once started. */
  loopDone: Promise<void> = Promise.resolve();
  /** The last heartbeat sent. */
  beat: Promise<void> = Promise.resolve();
  /** The heartbeat, lease renewal and topic refresh intervals, cleared on close. */
  readonly timers: NodeJS.Timeout[] = [];
  /** Aborted on close: ends the read in flight and the pauses between reads. */
  readonly stopRead = new AbortController();
  /** Aborted when a close gives up on running handlers: their ctx.signal. */
  readonly handlers = new AbortController();
  /** The waiting loop to resume at the next wake(): the read loop, a keyed standby or the drain on close. */
  wakeUp: (() => void) | null = null;
  /** Closed without waiting for store calls that did not answer: their later errors are not logged. */
  gaveUpOnStore = false;

  constructor(
    readonly driver: Driver,
    readonly o: ResolvedSubscribeOptions,
    /** The bus' maxPayloadBytes, also applied to what is read. */
    readonly maxBytes: number,
    readonly log: Logger,
    /** What the bus' closes know of a store that stopped answering (closing.ts). */
    readonly silence: StoreSilence,
  ) {
    this.group = o.group;
    this.consumer = o.consumer;
    // The awaited types are read like the others (a wait takes its event as it arrives).
    this.topics = new GroupTopics(driver, o.waitsFor.length === 0 ? o : { ...o, types: [...new Set([...o.types, ...o.waitsFor])] }, log);
    this.out = new Outcomes(driver, o, log);
    this.readAhead = new ReadAhead(o.readAhead, o.concurrency, driver.reads.roundTrip === true);
    this.held = new Holdings(driver, o, (what, err) => this.storeError(what, err));
    // A failed ack leaves the events pending: they are delivered again (at least once).
    this.acks = new Batcher(
      (ds) => this.driver.leases.ack(this.group, ds).catch((err) => this.storeError('ack', err)),
      { deferred: () => this.readingOn, carried: () => this.dispatching },
    );
  }

  /** Keyed: the current tenure (keyed/tenure.ts); always 0 otherwise. */
  gen(): number {
    return this.keyed === null ? 0 : this.keyed.gen;
  }

  /** Resolves at the next wake(). */
  idle(): Promise<void> {
    return new Promise<void>((resolve) => (this.wakeUp = resolve));
  }

  /** Something changed (a slot freed, a delivery settled, close): the waiting loop looks again. */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  storeError(what: string, err: unknown): void {
    if (this.gaveUpOnStore) return; // closed: told once in shutdown's warning
    this.out.storeError(what, err);
  }
}
