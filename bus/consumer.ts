// One subscription over a Driver: the read loop, the scheduler that starts handlers, and the
// effects of each delivery decision (decide.ts) — acks (batched), retries in hand, dead letters —
// plus lease renewal, heartbeats and the drain on close.
import type { Logger } from 'pino';
import type { Handler, Subscription } from './contract.js';
import type { KeyedStats } from './contract-delivery.js';
import { HEARTBEAT_MS, type Delivery, type Driver } from './driver.js';
import type { ResolvedSubscribeOptions } from './options.js';
import type { CloudEvent } from './event.js';
import { asTopic, matches } from './event.js';
import { Batcher } from './batcher.js';
import { Outcomes } from './outcomes.js';
import { ReadAhead } from './read-ahead.js';
import { Context } from './context.js';
import { onArrival, onSettled, type Decision } from './decide.js';
import { Holdings, type Held } from './held.js';
import { SubjectLanes } from './lanes.js';
import { GroupTopics, TOPIC_REFRESH_MS } from './topics.js';
import { errForLog, isA } from './thrown.js';
import { invalid, OwnershipLostError, StateTooLargeError } from './errors.js';
import { BoundedSteps, CLOSE_STORE_MS, settlesBy } from './closing.js';
import { callWithTimeout, NO_CLOCK, sleep, type HandlerClock } from './call.js';
import { MAX_UNCOMMITTED } from './keyed/owner.js';
import { KeyedTenure } from './keyed/tenure.js';
import { KeyedDelivery } from './keyed/context.js';
import { NO_KEY, STATE_TOO_LARGE } from './keyed/contract.js';
import type { KeyEntry } from './keyed/cache.js';
import type { WaitOptions } from './keyed/contract.js';
import { KeyedWaits, waitId } from './keyed/waits.js';

const READ_BLOCK_MS = 1000;
/** Failed events waiting for their retry do not take a concurrency slot; past this many, fetching pauses. */
const RETRY_WAIT_FACTOR = 4;

/** Publishes `value` as the reply to `request` (an event with `replyto`), handled in `group`; see requests.ts. */
export type Reply = (request: CloudEvent, group: string, value: unknown) => Promise<unknown>;

/** A subscription: fetches no more than it can start, and performs what decide.ts decides about each delivery. */
export class Consumer implements Subscription {
  readonly group: string;
  readonly consumer: string;
  private readonly held: Holdings;
  private lanes = new SubjectLanes<Held>();
  /** Keyed subscriptions: the group's ownership and the keys' state (keyed/tenure.ts, owner.ts); null otherwise. */
  readonly keyed: KeyedTenure | null = null;
  /** Keyed subscriptions: the handlers' durable waits (keyed/waits.ts); null otherwise. */
  private readonly waits: KeyedWaits | null = null;
  /** Handlers inside ctx.waitFor: they hold no concurrency slot meanwhile. */
  private waiting = 0;
  private readonly topics: GroupTopics;
  /** Acks wait here for the next read (which carries them) or the next setImmediate, whichever comes first. */
  private readonly acks: Batcher<Delivery>;
  /** A read that does not wait for new events is on its way (readAhead): the acks wait to go with the next one. */
  private readingOn = false;
  private readonly out: Outcomes;
  /** Events to read beyond the free slots: the readAhead option, or following the handlers' pace. */
  private readonly readAhead: ReadAhead;
  /** Deliveries started (counted at once, run from the next microtask) and not yet settled. */
  private running = 0;
  private retrying = 0;
  /** Started, their handler not yet called: see schedule(). */
  private scheduled: Held[] = [];
  /** Read ahead: admitted, waiting for a free slot (schedule()), started oldest first from `readyAt`. */
  private ready: Held[] = [];
  private readyAt = 0;
  private closing = false;
  private abandoned = false;
  private closed: Promise<void> | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly stopRead = new AbortController();
  private readonly handlers = new AbortController();
  private wakeUp: (() => void) | null = null;
  private timers: NodeJS.Timeout[] = [];
  private beat: Promise<void> = Promise.resolve();
  /** Closed without waiting for store calls that did not answer: their later errors are not logged. */
  gaveUpOnStore = false;

  constructor(
    private readonly driver: Driver,
    private readonly o: ResolvedSubscribeOptions,
    /** The bus' maxPayloadBytes, also applied to what is read. */
    private readonly maxBytes: number,
    private readonly handler: Handler,
    private readonly log: Logger,
    private readonly onClosed: (c: Consumer) => void,
    private readonly reply: Reply,
  ) {
    this.group = o.group;
    this.consumer = o.consumer;
    if (o.key === undefined && o.waitsFor.length > 0) throw invalid('INVALID_OPTION', `invalid waitsFor for group ${o.group}: ctx.waitFor is for keyed subscriptions only (set key)`);
    // The awaited types are read like the others (a wait takes its event as it arrives).
    this.topics = new GroupTopics(driver, o.waitsFor.length === 0 ? o : { ...o, types: [...new Set([...o.types, ...o.waitsFor])] }, log);
    this.out = new Outcomes(driver, o, log);
    this.readAhead = new ReadAhead(o.readAhead, o.concurrency, driver.reads.roundTrip === true);
    this.held = new Holdings(driver, o, (what, err) => this.storeError(what, err));
    if (o.key !== undefined) {
      if (driver.state === undefined) throw invalid('INVALID_OPTION', `invalid key for group ${o.group}: this store has no keyed state`);
      this.keyed = new KeyedTenure(driver.state, { ...o, key: o.key }, log, {
        running: () => this.running,
        closing: () => this.closing,
        idle: () => new Promise<void>((resolve) => (this.wakeUp = resolve)),
        pause: (ms) => sleep(ms, this.stopRead.signal),
        unstart: () => (this.running--, this.fill(), this.wake()),
        drop: (h) => this.drop(h),
        forget: () => this.forget(),
        take: (ds) => {
          this.dispatchAll(ds);
          this.runScheduled();
        },
        storeError: (what, err) => this.storeError(what, err),
      });
      const keyed = this.keyed;
      this.waits = new KeyedWaits({
        group: o.group,
        store: driver.state,
        declared: (type) => o.waitsFor.includes(type) || o.types.some((t) => matches(t, type)),
        queued: (key) => this.lanes.waiting(key),
        unqueue: (key, h) => {
          this.lanes.remove(key, h);
          h.state = 'running';
        },
        consumed: (h) => {
          this.held.delete(h);
          if (h.gen === keyed.gen) keyed.owner.settle(null, h.d);
          this.wake();
        },
        dropped: (h) => {
          this.held.delete(h);
          this.wake();
        },
        storeError: (what, err) => this.storeError(what, err),
      });
    }
    // A failed ack leaves the events pending: they are delivered again (at least once).
    this.acks = new Batcher(
      (ds) => this.driver.leases.ack(this.group, ds).catch((err) => this.storeError('ack', err)),
      { deferred: () => this.readingOn },
    );
  }

  async start(): Promise<void> {
    await this.topics.refresh();
    await this.heartbeat();
    this.loopDone = this.loop();
    this.timers.push(setInterval(() => void this.heartbeat(), HEARTBEAT_MS));
    const renewEvery = Math.max(10, Math.floor(this.o.claimIdleMs / 3));
    const owner = this.keyed?.owner;
    this.timers.push(setInterval(() => void (this.abandoned || (this.held.renew(owner?.unacknowledged()), owner?.renew())), renewEvery));
    if (this.topics.patterned) this.timers.push(setInterval(() => this.refreshTopics(), TOPIC_REFRESH_MS));
    for (const t of this.timers) t.unref();
  }

  /** A topic the bus in this process just published to for the first time: read it now if it matches. */
  topicPublished(topic: string): void {
    if (!this.closing && this.topics.wants(topic)) this.refreshTopics();
  }

  private refreshTopics(): void {
    this.topics.refresh().catch((err) => this.storeError('topic refresh', err));
  }

  keyedStats(): KeyedStats | null {
    if (this.keyed === null || this.waits === null) return null;
    return { ...this.keyed.stats(), waiting: this.waiting, waitsResumed: this.waits.resumed, waitsTimedOut: this.waits.timedOut };
  }

  /** Tells the store this consumer is alive (stats count live consumers); a failure waits for the next beat. */
  private heartbeat(): Promise<void> {
    this.beat = this.driver.groups.heartbeat(this.group, this.consumer).catch(() => {});
    return this.beat;
  }

  private async loop(): Promise<void> {
    const { concurrency } = this.o;
    const keyed = this.keyed;
    // The last read was full: more are probably waiting. A read sent then while handlers run does
    // not block (it comes back at once, with the acknowledgements settled meanwhile riding on the
    // read after it); one that finds nothing makes the next read block again, as any read does otherwise.
    let full = false;
    while (!this.closing) {
      if (keyed !== null && !keyed.owner.owned) {
        await keyed.standBy(() => this.topics.list, this.maxBytes);
        continue;
      }
      if (keyed !== null && keyed.owner.uncommitted >= MAX_UNCOMMITTED) {
        await keyed.owner.committed();
        continue;
      }
      // Events held: running, queued in lanes, or read ahead (in `ready`), at most holdMost.
      const ahead = this.readAhead.ahead;
      const holdMost = concurrency + ahead;
      // Reading ahead, a read takes at most half of holdMost, and waits until that much is free (while
      // handlers run): the next read goes out as soon as a batch is handed to its handlers, so one
      // batch's handlers run while the next batch is read, instead of the two taking turns.
      // With nothing running there is nothing to overlap the read with: it takes all there is room
      // for (handlers that return at once, settled before the next read, read twice as much a time).
      const readMost = ahead > 0 && this.running > 0 ? Math.ceil(holdMost / 2) : ahead > 0 ? holdMost : concurrency;
      // Keyed: read once half of holdMost is free (while others run), so reads and the commits that
      // follow them stay large instead of splitting into two interleaved small batches (measured:
      // about 2x the reads and commits per event, and 20% more CPU, without it).
      const readLeast = ahead > 0 || keyed !== null ? holdMost / 2 : 1;
      // Deliveries queued behind a waiting handler hold no slot either (up to RETRY_WAIT_FACTOR x
      // concurrency): else a key's next events could fill the slots while the awaited event stays unread.
      const parked = Math.min(this.lanes.parkedQueued, concurrency * RETRY_WAIT_FACTOR);
      const free = holdMost - (this.running - this.waiting) - (this.lanes.queued - parked) - (this.ready.length - this.readyAt);
      const starved = this.running > 0 && free < readLeast;
      if (free <= 0 || starved || this.retrying >= concurrency * RETRY_WAIT_FACTOR) {
        this.acks.kick(); // no read to carry them soon
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        continue;
      }
      let batch: Delivery[];
      const ack = this.acks.take();
      const gen = this.gen();
      const max = Math.min(free, readMost);
      const on = full && this.running > 0;
      this.readingOn = on;
      try {
        batch = await this.driver.reads.read({
          ack,
          group: this.group,
          consumer: this.consumer,
          topics: this.topics.list,
          max,
          leaseMs: this.o.claimIdleMs,
          blockMs: on ? 0 : READ_BLOCK_MS,
          signal: this.stopRead.signal,
          maxBytes: this.maxBytes,
        });
      } catch (err) {
        this.readingOn = false;
        this.acks.restore(ack);
        this.acks.kick();
        if (this.closing) break;
        this.storeError('read', err);
        await sleep(500, this.stopRead.signal);
        continue;
      }
      this.readingOn = false;
      full = ahead > 0 && batch.length >= max;
      if (this.closing) {
        // Read raced with close: hand them straight back, uncounted, for the next consumer.
        await this.held.release(batch.map((d): Held => ({ d, subject: undefined, state: 'new' })));
        break;
      }
      if (gen !== this.gen()) continue; // the tenure ended while reading: the next owner takes these over
      this.dispatchAll(batch);
      // Their handlers start now, before the next read is sent (the latency a handler sees).
      this.runScheduled();
      // A partial read (no backlog): handlers that finish at once settle before the next read goes
      // out, so their acks ride on it (one write and one reply instead of an XACK of their own).
      // Never after a full read: with a backlog the next read can go at once, and a turn of the
      // event loop per read cost a SQLite drain 2 us an event (5.6 -> 7.6 us at readAhead 0).
      if (batch.length > 0 && batch.length < max && this.running > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Keyed: the current tenure (keyed/tenure.ts); always 0 otherwise. */
  private gen(): number {
    return this.keyed === null ? 0 : this.keyed.gen;
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /**
   * Dispatches a batch. Awaited types (waitsFor) go last, so an awaited event read (or taken over)
   * with the delivery whose handler will wait for it queues behind that delivery in its key's lane,
   * where the wait finds it, instead of running first as an ordinary event.
   */
  private dispatchAll(ds: Delivery[]): void {
    const waited = this.o.waitsFor;
    if (waited.length === 0) {
      for (const d of ds) this.dispatch(d);
      return;
    }
    for (const d of ds) if (!waited.includes(d.topic)) this.dispatch(d);
    for (const d of ds) if (waited.includes(d.topic)) this.dispatch(d);
  }

  private dispatch(d: Delivery): void {
    // Handlers are chosen by type: the topic decides it, never the (forgeable) stored envelope.
    if (d.event !== null) d.event = asTopic(d.event, d.topic);
    const h: Held = { d, subject: undefined, state: 'new', gen: this.gen(), prev: null, next: null, held: false };
    this.held.add(h);
    this.perform(h, onArrival(d, this.o.maxAttempts));
  }

  /** Carries out a decision about a held delivery; `error` is what its handler threw, if it did. */
  private perform(h: Held, decision: Decision, error?: unknown): void {
    switch (decision.act) {
      case 'run':
        return this.admit(h);
      case 'ack':
        this.drop(h);
        // Keyed: acknowledged by the owner's next commit, with the key's state (accept()).
        return this.keyed === null ? this.acks.add(h.d) : undefined;
      case 'retry':
        return this.scheduleRetry(h, decision.delayMs, error);
      case 'dead_letter':
        h.state = 'running';
        return void this.deadLetter(h, decision.reason, decision.error, decision.stack);
    }
  }

  /** A delivery that may run: started now, or queued behind the running one of its subject. */
  private admit(h: Held): void {
    if (this.keyed !== null) {
      const key = this.keyed.owner.keyOf(h.d.event!);
      if (key === null) return this.perform(h, { act: 'dead_letter', reason: NO_KEY, error: `no key: the event has no ${this.o.key === 'subject' ? 'subject' : 'key (the key function returned none)'}` });
      h.subject = key;
      // A handler of the key waits for this event (ctx.waitFor): it takes it, past the key's lane.
      if (this.waits!.offer(h, key)) return;
    } else if (this.o.orderBy === 'subject') h.subject = h.d.event!.subject;
    if (h.subject !== undefined && !this.lanes.enter(h.subject, h)) return void (h.state = 'queued');
    this.schedule(h);
  }

  /**
   * The scheduler step, the one place a delivery starts (read, next in its lane, or retried): it
   * counts as running at once, so the read loop sees its slot taken, and its handler is called from
   * a microtask (or by the read loop, right after a batch), so handing a lane's next delivery over
   * from inside another's ack never runs a handler within that settling.
   */
  private schedule(h: Held): void {
    if (this.running - this.waiting >= this.o.concurrency) {
      h.state = 'queued';
      this.ready.push(h);
      return;
    }
    this.begin(h);
  }

  private begin(h: Held): void {
    h.state = 'running';
    this.running++;
    this.scheduled.push(h);
    if (this.scheduled.length === 1) queueMicrotask(this.runScheduled);
  }

  /** A slot is free: deliveries read ahead take the free slots, oldest first. */
  private fill(): void {
    if (this.readyAt === this.ready.length || this.closing) return;
    while (this.readyAt < this.ready.length && this.running - this.waiting < this.o.concurrency) this.begin(this.ready[this.readyAt++]);
    if (this.readyAt === this.ready.length) [this.ready, this.readyAt] = [[], 0];
  }

  private readonly runScheduled = (): void => {
    if (this.scheduled.length === 0) return;
    const hs = this.scheduled;
    this.scheduled = [];
    for (const h of hs) this.run(h);
  };

  /**
   * Calls the handler of a started delivery. The common case (not keyed, no timeoutMs, not a
   * request) is called without an async function around it: settled at once when the handler
   * returns a value, after one `.then` when it returns a promise (no async function, its promise
   * and a resumption per delivery, where most handlers of a fast drain return at once). Settling at once is
   * safe here: runScheduled() took its list before calling, and whatever settling starts (a lane's
   * next delivery, one read ahead) is scheduled for a later microtask, never run inside.
   */
  private run(h: Held): void {
    const d = h.d;
    if (this.keyed !== null || this.o.timeoutMs > 0 || d.event!.replyto !== undefined) return void this.runAsync(h);
    const ctx = new Context(d.attempts, d.position, this.group, this.consumer, this.handlers.signal);
    const started = this.o.onOutcome || this.readAhead.adaptive ? performance.now() : 0;
    let pending: Promise<unknown> | null = null;
    try {
      const value = this.handler(d.event!, ctx);
      // A promise, or any thenable, is followed as `await` would (a `then` that throws: the handler failed).
      if (value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function') {
        pending = Promise.resolve(value);
      }
    } catch (err) {
      return this.settle(h, ctx, started, true, err, null, null);
    }
    if (pending === null) return this.settle(h, ctx, started, false, undefined, null, null);
    pending.then(
      () => this.settle(h, ctx, started, false, undefined, null, null),
      (err: unknown) => this.settle(h, ctx, started, true, err, null, null),
    );
  }

  /** run() for keyed subscriptions, timeoutMs and requests (answered before the delivery settles). */
  private async runAsync(h: Held): Promise<void> {
    const d = h.d;
    let entry: KeyEntry | null = null;
    let ctx: Context;
    // With timeoutMs, the handler's signal also aborts at its timeout.
    const aborter = this.o.timeoutMs > 0 ? new AbortController() : null;
    const signal = aborter === null ? this.handlers.signal : AbortSignal.any([this.handlers.signal, aborter.signal]);
    // The timeoutMs clock of this call (paused while the handler waits in ctx.waitFor).
    let clock: HandlerClock = NO_CLOCK;
    let runEnded = null as AbortController | null;
    if (this.keyed !== null) {
      const entering = this.keyed.enter(h);
      entry = entering instanceof Promise ? await entering : entering;
      if (entry === null) return;
      const key = h.subject!;
      // A wait the handler left behind (it returned without awaiting it) ends with the handler.
      // Made at the first waitFor only: most handlers never wait.
      let waitSignal: AbortSignal | null = null;
      const waiting = (n: number, type: string, options: WaitOptions) => {
        waitSignal ??= AbortSignal.any([signal, (runEnded = new AbortController()).signal]);
        return this.waitFor(h, key, waitSignal, clock, n, type, options);
      };
      ctx = new KeyedDelivery(d.attempts, d.position, this.group, this.consumer, signal, key, entry.value, waiting);
    } else ctx = new Context(d.attempts, d.position, this.group, this.consumer, signal);
    let threw = false;
    let error: unknown;
    const started = this.o.onOutcome || this.readAhead.adaptive ? performance.now() : 0;
    try {
      const value =
        aborter !== null
          ? await callWithTimeout((c) => ((clock = c), this.handler(d.event!, ctx)), this.o.timeoutMs, aborter, `handler of ${d.topic} ${d.event?.id ?? ''}`)
          : await this.handler(d.event!, ctx);
      // A request is answered before it is acknowledged (a reply lost to a crash is sent again, under the same id).
      if (d.event!.replyto !== undefined && ctx.deadLetterReason === undefined && ctx.retryInMs === undefined) {
        await this.reply(d.event!, this.group, ctx.replied ? ctx.replied.value : value);
      }
    } catch (err) {
      threw = true;
      error = err;
    }
    runEnded?.abort(new Error('the handler returned without awaiting its waitFor'));
    this.settle(h, ctx, started, threw, error, entry, aborter);
  }

  /**
   * A handler call ended (`threw`: with `error`): its slot is freed, and its delivery's fate decided
   * and carried out. `entry`: a keyed call's key state; `aborter`: the timeoutMs one, if any.
   */
  private settle(h: Held, ctx: Context, started: number, threw: boolean, error: unknown, entry: KeyEntry | null, aborter: AbortController | null): void {
    const d = h.d;
    if (this.readAhead.adaptive) this.readAhead.observe(performance.now() - started);
    this.running--;
    this.fill();
    if (this.abandoned) return;
    if (entry !== null) {
      const n = (ctx as KeyedDelivery).waits;
      const waits = n === 0 ? [] : Array.from({ length: n }, (_, i) => waitId(this.group, d.event!, i));
      const { stale, refused } = this.keyed!.settle(h, entry, !threw && ctx.deadLetterReason === undefined, (ctx as KeyedDelivery).state, waits);
      if (stale) return this.wake();
      if (refused !== null) [threw, error] = [true, refused];
    }
    const decision =
      threw && isA(error, StateTooLargeError)
        ? ({ act: 'dead_letter', reason: STATE_TOO_LARGE, error: (error as StateTooLargeError).message } as const)
        : onSettled({ attempts: d.attempts, threw, error, deadLetterReason: ctx.deadLetterReason, retryInMs: ctx.retryInMs }, this.o);
    // A ctx.deadLetter is reported once its dead letter is stored (deadLetter()).
    if (this.o.onOutcome && (threw || ctx.deadLetterReason === undefined)) {
      // Timed out: the error is the one callWithTimeout aborted with (not a TimeoutError the handler threw itself).
      const timedOut = threw && aborter !== null && aborter.signal.aborted && error === aborter.signal.reason;
      this.out.report(threw ? 'failed' : 'handled', d, performance.now() - started, decision.act === 'retry', undefined, error, timedOut);
    }
    this.perform(h, decision, error);
    this.wake();
  }

  /**
   * ctx.waitFor of the handler of `h` (keyed/waits.ts): while it waits, the handler holds no
   * concurrency slot and its timeoutMs clock stops (the wait has its own deadline).
   */
  private async waitFor(h: Held, key: string, signal: AbortSignal, clock: HandlerClock, n: number, type: string, options: WaitOptions): Promise<CloudEvent> {
    this.waiting++;
    const lanes = this.lanes;
    lanes.park(key);
    clock.pause();
    this.fill();
    this.wake();
    try {
      return await this.waits!.wait(h, key, n, type, options, signal);
    } finally {
      this.waiting--;
      lanes.unpark(key);
      clock.resume();
    }
  }

  /** Keyed: a tenure ended (keyed/tenure.ts lose): forgets everything held, without a store call. */
  private forget(): void {
    this.waits?.abortAll(new OwnershipLostError('keyed group tenure ended: the wait goes on with the next owner'));
    this.held.clear();
    this.retrying = 0;
    this.lanes = new SubjectLanes<Held>();
    [this.ready, this.readyAt] = [[], 0];
    this.wake();
  }

  private scheduleRetry(h: Held, delay: number, error: unknown): void {
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ group: this.group, type: h.d.topic, id: h.d.event?.id, attempt: h.d.attempts, delay, err: errForLog(error) }, 'delivery failed, retrying');
    }
    this.retrying++;
    h.state = 'waiting';
    h.timer = setTimeout(() => void this.retry(h), delay);
  }

  private async retry(h: Held): Promise<void> {
    h.timer = undefined;
    this.retrying--;
    if (this.closing) return this.wake();
    try {
      await this.driver.leases.countAttempt(this.group, h.d);
      h.d.attempts++;
      this.schedule(h);
    } catch (err) {
      // The attempt could not be counted: leave the lease to expire so the store stays the authority.
      this.storeError('count attempt', err);
      this.drop(h);
    }
    this.wake();
  }

  private async deadLetter(h: Held, reason: string, error: string, stack?: string): Promise<void> {
    await this.out.deadLetter(h.d, reason, error, stack);
    this.drop(h);
    this.wake();
  }

  /** Forgets a delivery; its lane hands the next delivery of its subject to the scheduler (schedule). */
  private drop(h: Held): void {
    this.held.delete(h);
    if (h.subject === undefined) return;
    const next = this.lanes.leave(h.subject, h);
    if (next !== undefined && !this.closing) this.schedule(next);
  }

  close(options: { drain?: boolean } = {}): Promise<void> {
    this.closed ??= this.shutdown(options.drain !== false);
    return this.closed;
  }

  /**
   * Stops reading, drains (up to drainTimeoutMs), then makes its last store calls (BoundedSteps):
   * together they wait CLOSE_STORE_MS at most, so a store that does not answer (Redis down, its
   * command connection retrying for over a minute) cannot hold the close longer than
   * drainTimeoutMs + CLOSE_STORE_MS. What could not be done is logged once; none of it loses an
   * event: a delivery not acknowledged or not given back is delivered again after claimIdleMs.
   */
  private async shutdown(drain: boolean): Promise<void> {
    this.closing = true;
    this.topics.stop();
    this.stopRead.abort();
    this.wake();
    const deadline = Date.now() + (drain ? this.o.drainTimeoutMs : 0);
    // The loop ends at once (its read is aborted) unless a store call of its own holds it (a keyed
    // group's lease or commit in an outage): waited for here within the drain, and again below.
    await settlesBy(this.loopDone, Math.min(deadline, Date.now() + CLOSE_STORE_MS));
    if (drain && this.running > 0) {
      // Handlers waiting in ctx.waitFor are not waited for: they are given up below, their
      // deliveries left to the next owner (which waits on, up to the recorded deadline).
      while (this.running - this.waiting > 0 && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
          setTimeout(resolve, Math.min(50, Math.max(0, deadline - Date.now())));
        });
      }
    }
    const steps = new BoundedSteps(CLOSE_STORE_MS);
    await steps.step("the read loop's last store call", () => this.loopDone);
    this.held.cancelRetries();
    // Not yet started (queued behind a subject) or waiting for a retry: back to the group now.
    const notRunning = drain ? this.held.notRunning() : [];
    if (notRunning.length > 0) await steps.step(`give back ${notRunning.length} held deliveries`, () => this.held.release(notRunning));
    if (this.running > 0 || !drain) {
      this.abandoned = true;
      this.handlers.abort(new Error('subscription closed'));
    }
    for (const t of this.timers) clearInterval(t);
    await steps.step('the last heartbeat', () => this.beat); // a beat landing after forget() would count this consumer again
    if (this.acks.busy) await steps.step(`acknowledge handled deliveries (${this.acks.pending} not sent yet)`, () => this.acks.flush());
    if (this.keyed !== null) {
      const owner = this.keyed.owner;
      await steps.step(`commit the keyed group's state and acknowledgements (${owner.uncommitted} uncommitted)`, () => owner.flush());
      await steps.step("release the keyed group's lease", () => owner.release());
    }
    // Consumer names change with every host process: without this, stores collect dead ones forever.
    if (this.running === 0) await steps.step(`forget consumer ${this.consumer}`, () => this.driver.groups.forget(this.group, this.consumer, this.topics.list).catch((err) => this.storeError('forget', err)));
    if (steps.notDone.length > 0) {
      // The calls left behind fail or finish on their own (the bus' close disconnects): said here once.
      this.gaveUpOnStore = true;
      this.log.warn(
        { group: this.group, consumer: this.consumer, notDone: steps.notDone, waitedMs: CLOSE_STORE_MS },
        `subscription closed without waiting for the store (no answer within ${CLOSE_STORE_MS} ms): not done: ${steps.notDone.join('; ')}. ` +
          `Deliveries not acknowledged are delivered again after claimIdleMs (${this.o.claimIdleMs} ms): nothing is lost (at least once)`,
      );
    }
    this.onClosed(this);
  }

  private storeError(what: string, err: unknown): void {
    if (this.gaveUpOnStore) return; // closed: told once in shutdown's warning
    this.out.storeError(what, err);
  }
}
