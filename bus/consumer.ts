import { pino, type Logger } from 'pino';
import type { Handler, DeliveryContext, DeliveryOutcome, Subscription } from './contract.js';
import { HEARTBEAT_MS, type Delivery, type Driver } from './driver.js';
import type { ResolvedSubscribeOptions } from './options.js';
import { NonRetryableError } from './errors.js';
import { asTopic, expandTypes, matches } from './event.js';
import { backoffDelay } from './backoff.js';

const READ_BLOCK_MS = 1000;
/**
 * How often a pattern subscription asks the store for new topics (drivers answer cheaply when
 * nothing changed: a SCARD on Redis, a COUNT on SQLite). A topic first published by this bus is
 * seen at once (topicPublished); one published elsewhere within this interval, and the read waiting
 * on the old topics is woken (Driver.wakeRead), so its first event arrives within about this long.
 */
const TOPIC_REFRESH_MS = 100;
/** Failed events waiting for their retry do not take a concurrency slot; past this many, fetching pauses. */
const RETRY_WAIT_FACTOR = 4;

/** One delivery held by this consumer, from read to ack, dead letter or release. */
interface Held {
  d: Delivery;
  subject: string | undefined;
  /** queued: behind its subject's lane; running: in the handler; waiting: for a retry. */
  state: 'new' | 'queued' | 'running' | 'waiting';
  timer?: NodeJS.Timeout;
}

class Context implements DeliveryContext {
  deadLetterReason: string | undefined;
  constructor(
    readonly attempt: number,
    readonly position: string,
    readonly group: string,
    readonly consumer: string,
    readonly signal: AbortSignal,
  ) {}
  deadLetter(reason: string): void {
    this.deadLetterReason = reason ? describe(reason) : 'dead-lettered by handler';
  }
}

/**
 * Runs one subscription over a Driver: fetches no more than it can start, runs handlers with
 * per-subject lanes, retries in hand with backoff (counting each attempt in the store), renews the
 * lease of everything it holds, batches acks, and drains on close.
 */
export class Consumer implements Subscription {
  readonly group: string;
  readonly consumer: string;
  private readonly held = new Set<Held>();
  private readonly lanes = new Map<string, Held[]>();
  private running = 0;
  private queued = 0;
  private retrying = 0;
  private acks: Delivery[] = [];
  private ackFlush: Promise<void> | null = null;
  private topics: string[] = [];
  private closing = false;
  private abandoned = false;
  private closed: Promise<void> | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly stopRead = new AbortController();
  private readonly handlers = new AbortController();
  private wakeUp: (() => void) | null = null;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly driver: Driver,
    private readonly o: ResolvedSubscribeOptions,
    /** The bus' maxPayloadBytes, also applied to what is read. */
    private readonly maxBytes: number,
    private readonly handler: Handler,
    private readonly log: Logger,
    private readonly onClosed: (c: Consumer) => void,
  ) {
    this.group = o.group;
    this.consumer = o.consumer;
  }

  async start(): Promise<void> {
    await this.refreshTopics();
    await this.heartbeat();
    this.loopDone = this.loop();
    this.timers.push(setInterval(() => void this.heartbeat(), HEARTBEAT_MS));
    const renewEvery = Math.max(10, Math.floor(this.o.claimIdleMs / 3));
    this.timers.push(setInterval(() => void this.renew(), renewEvery));
    if (this.o.types.some((t) => t.endsWith('*'))) {
      this.timers.push(setInterval(() => void this.refreshTopics().catch((err) => this.storeError('topic refresh', err)), TOPIC_REFRESH_MS));
    }
    for (const t of this.timers) t.unref();
  }

  /** A topic the bus in this process just published to for the first time: read it now if it matches. */
  topicPublished(topic: string): void {
    if (this.closing || !this.groupCreated || this.topics.includes(topic)) return;
    if (this.o.types.some((t) => t.endsWith('*') && matches(t, topic))) void this.refreshTopics().catch((err) => this.storeError('topic refresh', err));
  }

  /**
   * One refresh at a time (two at once could both take a topic as new and list it twice); one asked
   * for meanwhile runs after it, as it may have read the topics before the new one was stored.
   */
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  private refreshTopics(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        await this.doRefreshTopics();
      } while (this.refreshAgain && !this.closing);
    })().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async doRefreshTopics(): Promise<void> {
    const known = this.o.types.some((t) => t.endsWith('*')) ? await this.driver.topics() : [];
    const fresh = expandTypes(this.o.types, known).filter((t) => !this.topics.includes(t));
    // The first call creates the group even with no topic yet (patterns matching nothing so far):
    // its start is now, so a topic that appears later is read from the subscribe on, not skipped.
    if (fresh.length === 0 && this.groupCreated) return;
    const skipped = await this.driver.createGroup(this.group, fresh, this.o.from);
    if (skipped > 0) {
      // A new group at `latest` reads nothing already stored, and stats show it with lag 0: say so once.
      this.log.info(
        { group: this.group, types: fresh, skipped },
        `new group ${this.group} starts at the latest event: skipping ${skipped} earlier event${skipped === 1 ? '' : 's'} of ${fresh.join(', ')} (from: 'earliest' reads them)`,
      );
    }
    const started = this.groupCreated;
    this.groupCreated = true;
    this.topics = [...this.topics, ...fresh];
    // The read waiting now waits on the old topics: end it, so the next one reads the new ones too.
    if (started && fresh.length > 0) this.driver.wakeRead?.(this.group, this.consumer);
  }

  private groupCreated = false;
  private beat: Promise<void> = Promise.resolve();

  /** Tells the store this consumer is alive (stats count live consumers); a failure waits for the next beat. */
  private heartbeat(): Promise<void> {
    this.beat = this.driver.heartbeat(this.group, this.consumer).catch(() => {});
    return this.beat;
  }

  private async loop(): Promise<void> {
    const { concurrency } = this.o;
    while (!this.closing) {
      const free = concurrency - this.running - this.queued;
      if (free <= 0 || this.retrying >= concurrency * RETRY_WAIT_FACTOR) {
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        continue;
      }
      let batch: Delivery[];
      const ack = this.acks;
      this.acks = [];
      try {
        batch = await this.driver.read({
          ack,
          group: this.group,
          consumer: this.consumer,
          topics: this.topics,
          max: free,
          leaseMs: this.o.claimIdleMs,
          blockMs: READ_BLOCK_MS,
          signal: this.stopRead.signal,
          maxBytes: this.maxBytes,
        });
      } catch (err) {
        this.acks.push(...ack);
        if (this.closing) break;
        this.storeError('read', err);
        await sleep(500, this.stopRead.signal);
        continue;
      }
      if (this.closing) {
        // Read raced with close: hand them straight back, uncounted, for the next consumer.
        await this.release(batch.map((d): Held => ({ d, subject: undefined, state: 'new' })));
        break;
      }
      for (const d of batch) this.dispatch(d);
    }
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  private dispatch(d: Delivery): void {
    if (d.event === null) return void this.deadLetter({ d, subject: undefined, state: 'running' }, d.oversize ? 'oversize' : 'malformed', d.malformed ?? 'malformed entry');
    // Handlers are chosen by type: the topic decides it, never the (forgeable) stored envelope.
    d.event = asTopic(d.event, d.topic);
    const h: Held = { d, subject: this.o.orderBy === 'subject' ? d.event.subject : undefined, state: 'new' };
    this.held.add(h);
    if (d.attempts > this.o.maxAttempts) {
      return void this.deadLetter(h, 'failed', `gave up after ${this.o.maxAttempts} attempts: the consumer of the last one stopped renewing its lease`);
    }
    if (h.subject !== undefined) {
      const lane = this.lanes.get(h.subject);
      if (lane) {
        lane.push(h);
        h.state = 'queued';
        this.queued++;
        return;
      }
      this.lanes.set(h.subject, [h]);
    }
    void this.run(h);
  }

  private async run(h: Held): Promise<void> {
    h.state = 'running';
    this.running++;
    const ctx = new Context(h.d.attempts, h.d.position, this.group, this.consumer, this.handlers.signal);
    let error: unknown = null;
    let failed = false;
    const started = this.o.onOutcome ? performance.now() : 0;
    try {
      await this.handler(h.d.event!, ctx);
    } catch (err) {
      failed = true;
      error = err;
    }
    this.running--;
    if (this.abandoned) return;
    if (this.o.onOutcome && (failed || ctx.deadLetterReason === undefined)) {
      const retry = failed && !isA(error, NonRetryableError) && h.d.attempts < this.o.maxAttempts;
      this.report(failed ? 'failed' : 'handled', h, performance.now() - started, retry, undefined, failed ? error : undefined);
    }
    if (!failed && ctx.deadLetterReason === undefined) {
      this.ack(h);
    } else if (!failed) {
      void this.deadLetter(h, ctx.deadLetterReason!, '');
    } else if (isA(error, NonRetryableError)) {
      void this.deadLetter(h, 'non_retryable', describe(error), stackOf(error));
    } else if (h.d.attempts >= this.o.maxAttempts) {
      void this.deadLetter(h, 'failed', describe(error), stackOf(error));
    } else {
      this.scheduleRetry(h, error);
    }
    this.wake();
  }

  private scheduleRetry(h: Held, error: unknown): void {
    const delay = backoffDelay(h.d.attempts, this.o.backoff);
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ group: this.group, type: h.d.topic, id: h.d.event?.id, attempt: h.d.attempts, delay, err: errForLog(error) }, 'delivery failed, retrying');
    }
    this.retrying++;
    h.state = 'waiting';
    h.timer = setTimeout(async () => {
      h.timer = undefined;
      this.retrying--;
      if (this.closing) return this.wake();
      try {
        await this.driver.countAttempt(this.group, h.d);
        h.d.attempts++;
        void this.run(h);
      } catch (err) {
        // The attempt could not be counted: leave the lease to expire so the store stays the authority.
        this.storeError('count attempt', err);
        this.drop(h);
      }
      this.wake();
    }, delay);
  }

  private ack(h: Held): void {
    this.drop(h);
    this.acks.push(h.d);
    if (this.acks.length === 1 && this.ackFlush === null) this.ackFlush = new Promise((r) => setImmediate(() => this.flushAcks().then(r)));
  }

  private async flushAcks(): Promise<void> {
    while (this.acks.length > 0) {
      const batch = this.acks;
      this.acks = [];
      // A failed ack leaves the events pending: they are delivered again (at least once).
      await this.driver.ack(this.group, batch).catch((err) => this.storeError('ack', err));
    }
    this.ackFlush = null;
  }

  private report(outcome: DeliveryOutcome['outcome'], h: Held, durationMs: number, retry: boolean, reason: string | undefined, error: unknown): void {
    try {
      const d = h.d;
      this.o.onOutcome!({ outcome, type: d.topic, group: this.group, id: d.event?.id ?? '', position: d.position, attempt: d.attempts, durationMs, retry, reason, error });
    } catch (err) {
      this.log.error({ group: this.group, err: errForLog(err) }, 'onOutcome threw');
    }
  }

  /**
   * Reported (onOutcome, the warn line) once stored: a dead letter the store refused stays pending,
   * comes back after its lease and is dead-lettered again then, so it is never reported twice.
   * `stack`: the thrown error's (stackOf), stored with the dead letter and logged.
   */
  private async deadLetter(h: Held, reason: string, error: string, stack?: string): Promise<void> {
    try {
      await this.driver.deadLetter(this.group, h.d, reason, error, stack);
      if (this.o.onOutcome) this.report('dead_lettered', h, 0, false, reason, error);
      const at = { group: this.group, type: h.d.topic, position: h.d.position, id: h.d.event?.id, attempts: h.d.attempts, reason, error };
      this.log.warn(stack === undefined ? at : { ...at, stack }, 'dead letter');
    } catch (err) {
      this.storeError('dead letter', err);
    }
    this.drop(h);
    this.wake();
  }

  /** Forgets a delivery and lets the next event of its subject start. */
  private drop(h: Held): void {
    this.held.delete(h);
    if (h.subject === undefined) return;
    const lane = this.lanes.get(h.subject);
    if (!lane || lane[0] !== h) return;
    lane.shift();
    if (lane.length === 0) return void this.lanes.delete(h.subject);
    if (this.closing) return;
    this.queued--;
    void this.run(lane[0]);
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0 || this.abandoned) return;
    const ds = [...this.held].map((h) => h.d);
    await this.driver.renew(this.group, this.consumer, ds, this.o.claimIdleMs).catch((err) => this.storeError('renew', err));
  }

  /** Gives deliveries back to the group at once; those never started keep their attempt uncounted. */
  private async release(hs: Held[]): Promise<void> {
    if (hs.length === 0) return;
    const ds = hs.map((h) => (h.state === 'waiting' ? h.d : { ...h.d, attempts: h.d.attempts - 1 }));
    await this.driver.release(this.group, this.consumer, ds).catch((err) => this.storeError('release', err));
    for (const h of hs) this.held.delete(h);
  }

  close(options: { drain?: boolean } = {}): Promise<void> {
    this.closed ??= this.shutdown(options.drain !== false);
    return this.closed;
  }

  private async shutdown(drain: boolean): Promise<void> {
    this.closing = true;
    this.stopRead.abort();
    this.wake();
    await this.loopDone;
    if (drain && this.running > 0) {
      const deadline = Date.now() + this.o.drainTimeoutMs;
      while (this.running > 0 && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
          setTimeout(resolve, Math.min(50, Math.max(0, deadline - Date.now())));
        });
      }
    }
    for (const h of this.held) if (h.timer) clearTimeout(h.timer);
    if (drain) {
      // Not yet started (queued behind a subject) or waiting for a retry: back to the group now.
      await this.release([...this.held].filter((h) => h.state !== 'running'));
    }
    if (this.running > 0 || !drain) {
      this.abandoned = true;
      this.handlers.abort(new Error('subscription closed'));
    }
    for (const t of this.timers) clearInterval(t);
    await this.beat; // a beat landing after forget() would count this consumer again
    if (this.ackFlush) await this.ackFlush;
    await this.flushAcks();
    // Consumer names change with every host process: without this, stores collect dead ones forever.
    if (this.running === 0) await this.driver.forget(this.group, this.consumer, this.topics).catch((err) => this.storeError('forget', err));
    this.onClosed(this);
  }

  private storeError(what: string, err: unknown): void {
    this.log.error({ group: this.group, consumer: this.consumer, err: errForLog(err) }, `store error during ${what}`);
  }
}

/** Longest text describe() makes of a thrown value that is not an Error. */
const DESCRIBE_MAX = 1000;

/**
 * A thrown value as text, for logs and dead letters. Total: it never throws, whatever was thrown
 * (`Object.create(null)`, an object whose toString throws, a revoked Proxy), so no error path can
 * itself fail. An Error gives `<name>: <message>`; an object String() cannot convert, its JSON.
 */
export function describe(err: unknown): string {
  try {
    if (err instanceof Error) return `${String(err.name)}: ${String(err.message)}`;
    return String(err);
  } catch {
    // Not convertible by String(): fall through to JSON, then to its tag.
  }
  try {
    const json = JSON.stringify(err);
    if (typeof json === 'string') return json.length > DESCRIBE_MAX ? `${json.slice(0, DESCRIBE_MAX)}...` : json;
  } catch {
    // Circular, a BigInt, a getter that throws: fall through.
  }
  try {
    return `${Object.prototype.toString.call(err)} (not convertible to a string)`;
  } catch {
    return `a thrown ${typeof err} (not convertible to a string)`;
  }
}

/** Most characters of a stack stackOf() keeps: a dead letter stays small whatever was thrown. */
export const MAX_STACK_CHARS = 8192;
/** Causes stackOf() follows (`caused by:` lines). */
const MAX_CAUSES = 5;

/**
 * The stack of a thrown Error, where it was thrown first (V8's text: `<name>: <message>` then the
 * frames), followed by its causes' as `caused by: <stack>` (the form pino logs), cut to
 * MAX_STACK_CHARS. Undefined for a thrown value that is not an Error or has no stack. Total, like
 * describe(): a getter that throws gives undefined, not an error.
 */
export function stackOf(err: unknown): string | undefined {
  try {
    if (!(err instanceof Error)) return undefined;
    let out = typeof err.stack === 'string' ? err.stack : '';
    let cause: unknown = err.cause;
    for (let i = 0; i < MAX_CAUSES && cause instanceof Error && out.length < MAX_STACK_CHARS; i++, cause = cause.cause) {
      if (typeof cause.stack === 'string') out += `\ncaused by: ${cause.stack}`;
    }
    if (out === '') return undefined;
    if (out.length <= MAX_STACK_CHARS) return out;
    const tail = `\n... (cut: ${out.length} characters)`;
    return out.slice(0, MAX_STACK_CHARS - tail.length) + tail;
  } catch {
    return undefined;
  }
}

/**
 * A thrown value for a log line's `err` field. An Error goes as itself: pino's `err` serializer
 * (active in every logger pino() makes) writes its type, message and stack with its causes'. Any
 * other value, or an Error pino's serializer cannot read (a getter that throws), goes as
 * `{ type, message, stack }` built from describe() and stackOf(): pino writes a non-Error as it is,
 * and a revoked Proxy would throw inside the logger. Total.
 */
export function errForLog(err: unknown): unknown {
  try {
    if (err instanceof Error) {
      pino.stdSerializers.err(err);
      return err;
    }
  } catch {
    // Unreadable for pino (or `instanceof` itself threw, as on a revoked Proxy): described instead.
  }
  // No prototype: pino's serializer then keeps `type` as given rather than naming the constructor.
  const out = Object.create(null) as Record<string, string>;
  out.type = thrownType(err);
  out.message = describe(err);
  const stack = stackOf(err);
  if (stack !== undefined) out.stack = stack;
  return out;
}

/** `instanceof` that cannot throw (it does on a revoked Proxy). */
function isA(err: unknown, cls: abstract new (...args: never[]) => unknown): boolean {
  try {
    return err instanceof cls;
  } catch {
    return false;
  }
}

function thrownType(err: unknown): string {
  try {
    return isA(err, Error) ? String((err as Error).name) : err === null ? 'null' : typeof err;
  } catch {
    return typeof err;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}
