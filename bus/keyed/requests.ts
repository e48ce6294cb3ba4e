/**
 * Durable requests of keyed handlers (`ctx.request` in a keyed handler, README "Request/reply"): a
 * request whose reply survives the requesting process. A crash (SIGKILL, a lost lease, a restart)
 * while the request is out neither asks again nor loses the reply: the handler runs again from its
 * start, and this call, by its order in the run, returns the recorded reply or waits on for it.
 *
 * - The request is a durable call of the run, as waitFor and step (waits.ts, steps.ts): a wait
 *   record at the next ordinal, type `request <type>`, its deadline fixed at the first run, opened
 *   before the request is published. Removed with the commit, by `state rm`, `dlq purge` and
 *   `dlq retry --fresh` as every durable call's record.
 * - Published once across re-runs: its id derived from the group, the delivery, the ordinal and the
 *   record's deadline (a record made anew after an erasure asks anew),
 *   its source the group's (`/agentbus/keyed/<group>`, as a keyed agent's publishes), its dedup
 *   window lasting past the deadline (a re-run after the deadline publishes nothing).
 * - Its reply address outlives the process: `replyto` is the group's reply topic
 *   (keyedReplyTopic), read by the group's owner, whoever it is; its correlationid names the record
 *   and the deadline (`<record id>.<deadline, base 36>`), so a reply is routed without a lookup.
 * - A reply is recorded into the record (StateStore.matchWait), then acknowledged with the next
 *   commit, and handed to the run waiting for it, if one runs here; otherwise the next run finds it.
 *   A reply stored at or after the deadline (by the store's stamp, however late it is read:
 *   reply-reads.ts), to a record gone (committed, erased) or after another reply (the
 *   first one recorded wins) is acknowledged and dropped, counted as any dropped reply. So is one
 *   naming another deadline than the record a run waits on here (the record was erased and made
 *   anew); with no run waiting here that is not known, and such a reply would be recorded.
 *   Not fenced by the epoch, as the waits' records (StateStore.matchWait).
 * - A failure reply (the request dead-lettered by the replier's group) is recorded as any reply:
 *   every run rejects with RequestFailedError.
 * - A timeout or a failure reply ends the request, not the handler: the handler may catch it and go
 *   on (its re-runs see the same error, from the record). An attempt that fails WITH it (the error
 *   propagated out of the handler, itself or as a `cause`) has that one record removed before its
 *   retry or dead letter (failedRequest, handler-call.ts), if the request is the attempt's own (same
 *   group and delivery: another key's error, kept and rethrown, removes nothing) and the attempt's
 *   tenure still current, so the next run, and a plain `dlq retry`,
 *   ask anew under a new id and deadline: a model or tool call that timed out is asked again, as
 *   an in-memory request's retry would. A run ended otherwise while its request is out (a crash, a
 *   lost lease, a close) leaves the record: its re-run continues the same request.
 */
import type { Held } from '../held.js';
import type { CloudEvent, PublishOptions } from '../event.js';
import { checkType, stableId } from '../event.js';
import { misuse, OwnershipLostError, RequestFailedError, RequestTimeoutError } from '../errors.js';
import type { RequestOptions } from '../contract-options.js';
import { REQUEST, type StateStore } from '../state.js';
import { failedError, REQUEST_FAILED_SCHEMA, REQUEST_TIMEOUT_MS, type RequestEvents } from '../requests.js';
import { describe } from '../thrown.js';
import { MAX_TIMER_MS, outOfOrder, WAIT_RECORD_TTL_MS, waitId } from './waits.js';
import type { ReplyReads } from './reply-reads.js';

/** Longest `timeoutMs` of a durable request (as bus.request's). */
export const MAX_REQUEST_MS = 86_400_000;
/** The request's dedup marker outlives its deadline by this much (the last re-run's publish is before it). */
const DEDUP_MARGIN_MS = 60_000;
/** Options a durable request sets itself. */
const OWN_OPTIONS = ['id', 'correlationid', 'replyto', 'dedupWindowMs', 'delay', 'at', 'name'] as const;

/** The source of a keyed group's durable requests when the caller gives none: the same on every host (the publish dedups). */
export function keyedRequestSource(group: string): string {
  return `/agentbus/keyed/${group}`;
}

/** The correlationid of the request recorded as `id` with `deadline`. */
export function correlationOf(id: string, deadline: number): string {
  return `${id}.${deadline.toString(36)}`;
}

/** A durable request's correlationid read back (null: not one). */
export function parseCorrelation(c: string | undefined): { id: string; deadline: number } | null {
  const dot = c === undefined ? -1 : c.lastIndexOf('.');
  if (dot <= 0) return null;
  const deadline = parseInt(c!.slice(dot + 1), 36);
  return Number.isSafeInteger(deadline) ? { id: c!.slice(0, dot), deadline } : null;
}

/** The durable request whose RequestTimeoutError or RequestFailedError each error is: its record id, and the run's group and event. */
const endedRequest = new WeakMap<object, RequestLink>();
interface RequestLink {
  readonly id: string;
  readonly group: string;
  readonly event: CloudEvent;
}
/** How deep failedRequest follows `cause`. */
const CAUSE_DEPTH = 4;

/**
 * The record id of the durable request whose RequestTimeoutError or RequestFailedError failed a
 * handler's attempt: `err` itself, or one of its causes (a handler wrapping it), when that request
 * is one of this run's (the delivery of `event` in `group`). Undefined for any other error, and for
 * another run's request error (kept by the handler, thrown by another key's run): that record is not
 * this attempt's to remove.
 */
export function failedRequest(err: unknown, group: string, event: CloudEvent): string | undefined {
  for (let e = err, i = 0; i <= CAUSE_DEPTH && e !== null && typeof e === 'object'; e = (e as { cause?: unknown }).cause, i++) {
    const link = endedRequest.get(e);
    if (link !== undefined && link.group === group && link.event.source === event.source && link.event.id === event.id) return link.id;
  }
  return undefined;
}

/** What the durable requests need of their consumer. */
export interface RequestsHost {
  readonly group: string;
  readonly store: StateStore;
  /** The group's reply topic (keyedReplyTopic). */
  readonly topic: string;
  /** Stores an event (the bus' publish). */
  publish(type: string, data: unknown, options: PublishOptions): Promise<unknown>;
  /** The bus' in-memory request (bus.request), for `durable: false`. */
  request(type: string, data: unknown, options: RequestOptions | undefined): Promise<unknown>;
  /** Resolves once the group reads its reply topic (taken on before the first request is published). */
  reading(): Promise<void>;
  /** The bus' observers (requests sent, how they ended, replies dropped). */
  readonly tell: RequestEvents;
  /** A reply recorded (or dropped): acknowledged with the next commit, forgotten. */
  consumed(h: Held): void;
  /** A reply that could not be recorded: forgotten unacknowledged (its lease runs out, it comes again). */
  dropped(h: Held): void;
  storeError(what: string, err: unknown): void;
  /** What the owner looked at on the reply topic: a reply's deadline is judged by when it was stored (reply-reads.ts). */
  readonly reads: ReplyReads;
}

/** A run waiting for the reply recorded as `id` (registered before the record is read: no reply slips between). */
interface Expecting {
  readonly promise: Promise<string>;
  /** The record's deadline, once read: a reply naming another is to an erased record of the same id. */
  deadline?: number;
  resolve(json: string): void;
  reject(err: unknown): void;
}

export class KeyedRequests {
  private readonly waiting = new Map<string, Expecting>();
  /** Requests that returned (or failed with) a reply an earlier run had recorded, without asking again; KeyedStats.requestsReplayed. */
  replayed = 0;

  constructor(private readonly c: RequestsHost) {}

  /** The group's reply topic: what is read from it is offered here (scheduler.ts). */
  get topic(): string {
    return this.c.topic;
  }

  /** What the owner looked at on the reply topic (read-loop.ts reports its reads there). */
  get reads(): ReplyReads {
    return this.c.reads;
  }

  /** Runs waiting for their reply now. */
  get size(): number {
    return this.waiting.size;
  }

  /** `ctx.request(type, data, { durable: false })`: the bus' in-memory request. */
  inMemory(type: string, data: unknown, options: RequestOptions | undefined): Promise<unknown> {
    return this.c.request(type, data, options);
  }

  /** The request recorded as `id` by the run of `event` in this group (failedRequest). */
  private link(id: string, event: CloudEvent): RequestLink {
    return { id, group: this.c.group, event };
  }

  /** Refuses a bad durable request before it takes an ordinal. */
  static check(type: string, options: unknown): void {
    checkType(type);
    if (options !== undefined && (options === null || typeof options !== 'object')) throw misuse(`ctx.request ${type}: options must be an object, got ${describe(options)}`);
    const o = (options ?? {}) as Record<string, unknown>;
    const own = OWN_OPTIONS.filter((k) => o[k] !== undefined);
    if (own.length > 0) {
      throw misuse(`ctx.request ${type}: a durable request sets ${own.join(', ')} itself (its id and correlationid are derived from the delivery): leave ${own.length > 1 ? 'them' : 'it'} out, or pass durable: false for an in-memory request`);
    }
    const ms = o.timeoutMs;
    if (ms !== undefined && (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 1 || ms > MAX_REQUEST_MS)) {
      throw misuse(`invalid ctx.request ${type} timeoutMs ${describe(ms)}: expected an integer from 1 to ${MAX_REQUEST_MS}`);
    }
  }

  /**
   * The `n`-th durable call of the handler of `event` (key `key`) in this run: `ctx.request(type,
   * data, options)`, see the file header. `parked` runs the wait for the reply, the handler parked
   * (keyed/slots.ts: its concurrency slot kept, unless the group reads `type` itself; its timeoutMs clock stopped); `signal` is the handler's.
   */
  async ask(event: CloudEvent, key: string, n: number, type: string, data: unknown, options: RequestOptions | undefined, signal: AbortSignal, parked: <T>(wait: () => Promise<T>) => Promise<T>): Promise<unknown> {
    const { group, store } = this.c;
    const { timeoutMs, ...publish } = options ?? {};
    const ms = timeoutMs ?? REQUEST_TIMEOUT_MS;
    const id = waitId(group, event, n);
    const link = this.link(id, event);
    const w = expecting();
    this.waiting.set(id, w);
    try {
      const proposed = Date.now() + ms;
      const rec = await store.openWait(group, id, { type: REQUEST + type, key, deadline: proposed }, WAIT_RECORD_TTL_MS);
      if (rec.type !== REQUEST + type || rec.key !== key) throw outOfOrder(n, { type: REQUEST + type, key }, rec);
      w.deadline = rec.deadline;
      const correlationid = correlationOf(id, rec.deadline);
      if (rec.matched !== null) {
        this.replayed++;
        return decode(type, rec.matched, link);
      }
      if (signal.aborted) throw signal.reason;
      if (Date.now() >= rec.deadline) {
        // Past the deadline, not asked again: a reply stored in time may still wait unread on the reply topic.
        await this.c.reading();
        return decode(type, await parked(() => untilReply(this.c.reads, w, rec.deadline, signal, () => timedOut(type, key, correlationid, rec.deadline, link))), link);
      }
      const started = performance.now();
      await this.c.reading();
      this.c.tell.sent(type);
      let outcome: 'replied' | 'timed_out' | 'failed' = 'failed';
      try {
        await this.c.publish(type, data, {
          source: keyedRequestSource(group),
          ...publish,
          // The record's deadline too: a run after an erasure (state rm, dlq retry --fresh) opens a new record and asks anew, not deduplicated.
          id: stableId(group, 'request', event.source, event.id, n, rec.deadline),
          correlationid,
          replyto: this.c.topic,
          dedupWindowMs: rec.deadline - Date.now() + DEDUP_MARGIN_MS,
        });
        const json = await parked(() => untilReply(this.c.reads, w, rec.deadline, signal, () => timedOut(type, key, correlationid, rec.deadline, link)));
        const reply = decode(type, json, link);
        outcome = 'replied';
        return reply;
      } catch (err) {
        if (err instanceof RequestTimeoutError) outcome = 'timed_out';
        throw err;
      } finally {
        this.c.tell.ended({ type, outcome, durationMs: performance.now() - started });
      }
    } finally {
      if (this.waiting.get(id) === w) this.waiting.delete(id);
    }
  }

  /**
   * A delivery read from the group's reply topic: recorded into its request's record, then
   * acknowledged with the next commit, and handed to the run waiting for it here, if any (see the
   * file header). It never enters a lane nor runs a handler.
   */
  offer(h: Held): void {
    h.state = 'running';
    const e = h.d.event!;
    const to = parseCorrelation(e.correlationid);
    if (to === null) return this.drop(h);
    if (Date.now() >= to.deadline) {
      // Read late (a takeover, a stopped owner): it counts if the store stored it before the deadline.
      const reads = this.c.reads;
      // The recording is chained: a look at the reply topic (reply-reads.ts) waits for it whole.
      return void reads.track(reads.storedBefore(h.d, to.deadline).then(
        (inTime) => (inTime ? this.record(h, e, to) : this.drop(h)),
        (err: unknown) => {
          this.c.dropped(h);
          this.c.storeError('request reply', err);
        },
      ));
    }
    void this.record(h, e, to);
  }

  /** Records the reply `e` (of `h`) into its request's record `to`, hands it to the run waiting here; resolves when done. */
  private record(h: Held, e: CloudEvent, to: { id: string; deadline: number }): Promise<void> | undefined {
    // A reply to a record erased (state rm, dlq retry --fresh) and made anew by a run waiting here.
    const waiting = this.waiting.get(to.id);
    if (waiting?.deadline !== undefined && waiting.deadline !== to.deadline) {
      this.drop(h);
      return undefined;
    }
    const json = JSON.stringify(e);
    return this.c.reads.track(this.c.store.matchWait(this.c.group, to.id, json).then(
      (recorded) => {
        const w = this.waiting.get(to.id);
        if (recorded === null) {
          // Its record is gone: its delivery committed (a late or second reply), or its key erased
          // (state rm) while a run waits here: that run ends, and its next run asks anew.
          this.drop(h);
          if (w !== undefined) {
            this.waiting.delete(to.id);
            w.reject(new OwnershipLostError(`ctx.request: the request's record is gone (its key erased by agentbus state rm, or its delivery committed by another owner); the handler runs again and asks anew`));
          }
          return;
        }
        if (recorded !== json) this.c.tell.dropped(); // another reply was recorded first: it is the answer
        this.c.consumed(h);
        if (w !== undefined) {
          this.waiting.delete(to.id);
          w.resolve(recorded);
        }
      },
      (err: unknown) => {
        this.c.dropped(h);
        this.c.storeError('request reply', err);
      },
    ));
  }

  /**
   * Removes the record `id` (failedRequest: an attempt failed with its request's timeout or failure
   * reply) before the attempt's retry or dead letter: the next run asks anew. Resolves even when the
   * store fails (logged): that run then sees the same error again.
   */
  forget(id: string): Promise<void> {
    return this.c.store.removeWaits(this.c.group, [id]).then(
      () => undefined,
      (err: unknown) => this.c.storeError('request record removal', err),
    );
  }

  /** Every run waiting here ends with `err` (the keyed tenure ended: their deliveries go to the next owner). */
  abortAll(err: unknown): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of all) w.reject(err);
  }

  /** A reply no request waits for: acknowledged and counted. */
  private drop(h: Held): void {
    this.c.tell.dropped();
    this.c.consumed(h);
  }
}

function expecting(): Expecting {
  let resolve!: (json: string) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<string>((res, rej) => ([resolve, reject] = [res, rej]));
  promise.catch(() => {}); // a run that ended before waiting (a store error, a misuse) leaves it unawaited
  return { promise, resolve, reject };
}

/**
 * The recorded reply `w` gets, or the abort of `signal`, or the timeout once `deadline` passed and
 * the owner looked at everything stored on the reply topic until then (reply-reads.ts).
 */
function untilReply(reads: ReplyReads, w: Expecting, deadline: number, signal: AbortSignal, timeout: () => Error): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    // Ends a look at the reply topic this wait asked for (reply-reads.ts), whatever ends the wait.
    const looking = new AbortController();
    const end = (f: () => void) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      looking.abort();
      signal.removeEventListener('abort', aborted);
      f();
    };
    const aborted = () => end(() => reject(signal.reason));
    const arm = () => {
      const left = deadline - Date.now();
      if (left <= 0) return void reads.lookedAt(deadline, looking.signal).then(() => end(() => reject(timeout())));
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    w.promise.then(
      (json) => end(() => resolve(json)),
      (err: unknown) => end(() => reject(err)),
    );
    if (signal.aborted) return aborted();
    signal.addEventListener('abort', aborted, { once: true });
    arm();
  });
}

/** A recorded reply as the request `link` returns it: its data, or RequestFailedError for a failure reply. */
function decode(type: string, json: string, link: RequestLink): unknown {
  const e = JSON.parse(json) as CloudEvent;
  if (e.dataschema === REQUEST_FAILED_SCHEMA) throw ended(failedError(type, e), link);
  return e.data;
}

function timedOut(type: string, key: string, correlationid: string, deadline: number, link: RequestLink): RequestTimeoutError {
  return ended(new RequestTimeoutError(`no reply to ${type} (durable request of key ${JSON.stringify(key)}, correlationid ${correlationid}) by its deadline ${new Date(deadline).toISOString()}`), link);
}

/** `err` marked as the end of the request `link` (failedRequest). */
function ended<E extends RequestTimeoutError | RequestFailedError>(err: E, link: RequestLink): E {
  endedRequest.set(err, link);
  return err;
}
