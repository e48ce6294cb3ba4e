/**
 * Request/reply over the bus (guarantee 7 of the actor brief). A request is an event with two
 * CloudEvents extension attributes: `correlationid` (fresh per request) and `replyto`, the reply
 * topic of the requesting bus (`agentbus.reply.<random>`, one per bus, read by a group of the same
 * name that only this bus consumes). The handler that takes the request replies with its return
 * value (or `ctx.reply(value)`) on that topic (handler-call.ts; a pattern subscription only by
 * ctx.reply, see `answers`); its reply id is derived from the
 * delivery, so a redelivered handler replies again under the same id, and the requester drops the
 * second reply as it drops any to a request already answered. Replies never queue behind the
 * requester's own keys or subjects: they arrive on a topic of their own. A reply arriving after its
 * request timed out (or a second reply to one request) is dropped and counted: each request, its
 * end and each dropped reply are told to the bus' observers (Bus.observe; the host's metrics).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { checkType, REPLY_PREFIX, stableId } from './event.js';
import type { Bus, DeliveryContext, Subscription } from './contract.js';
import { Context } from './context.js';
import type { RequestOutcome } from './contract-observer.js';
import type { RequestOptions } from './contract-options.js';
import type { CloudEvent, PublishOptions } from './event.js';
import { BusClosedError, invalid, RequestFailedError, RequestTimeoutError } from './errors.js';
import { int } from './validate.js';

/**
 * Whether a handler's call answers the request it took. A subscription that names the request's type
 * answers always: its return value, `ctx.reply`'s, or null (a handler of a void action tells the
 * requester it is done). One that took it through a pattern (`*`, `tool.*`) answers only by calling
 * `ctx.reply`: an observer (an audit `*` agent) would otherwise answer every request it sees, with
 * null or whatever its handler happens to return (`(e) => seen.push(e)`), racing the real reply,
 * and the first reply wins; or when the call was marked `answering` (below).
 */
export function answers(types: readonly string[], type: string, ctx: Pick<Context, 'replied' | 'answering'>): boolean {
  return ctx.replied !== undefined || ctx.answering || namesType(types, type);
}

/**
 * Marks one handler call as answering the request it carries, as a subscription naming its type
 * does: its return value is the reply (null for nothing, unless it calls `ctx.reply`), and if the
 * request ends as a dead letter the requester is failed at once (retries.ts). For the agent layer,
 * which knows what the subscription does not: an agent's own `on<Type>` method reached through a
 * pattern names its type (runtime/instance.ts). Per call, not per subscription: the same pattern
 * subscription's `handle` answers by `ctx.reply` only. A replay's context may be marked too: a
 * replayed request is not answered (replay.ts), so the mark changes nothing there.
 */
export function answering(ctx: DeliveryContext): void {
  if (ctx instanceof Context) ctx.answering = true;
}

/** Whether a subscription's `types` name `type` itself, not through a pattern: it answers requests of that type unasked (a value, or a failure). */
export function namesType(types: readonly string[], type: string): boolean {
  return types.includes(type);
}

/** A request's `timeoutMs` when none is given. */
export const REQUEST_TIMEOUT_MS = 30_000;

interface Waiting {
  resolve: (data: unknown) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
  type: string;
  /** performance.now() at the call. */
  started: number;
}

/** What Requests tells the bus' observers. */
export interface RequestEvents {
  sent(type: string): void;
  ended(r: RequestOutcome): void;
  dropped(): void;
}

/**
 * What a bus hands its keyed subscriptions for their durable requests (keyed/requests.ts): its
 * publish, its in-memory request (`durable: false`) and its observers.
 */
export interface RequestLink {
  publish(type: string, data: unknown, options: PublishOptions): Promise<unknown>;
  request(type: string, data: unknown, options?: RequestOptions): Promise<unknown>;
  tell: RequestEvents;
}

const NOBODY: RequestEvents = { sent: () => {}, ended: () => {}, dropped: () => {} };

/**
 * A reply's publish options: the request's correlationid, and an id derived from the group and
 * the request, the same when a handler runs again (redelivered, on any host). Stored without a
 * dedup marker (window 0): the requester takes the first reply to a request and drops any other,
 * so a marker per reply, kept for the bus' dedup window (an hour by default), would only cost a
 * script call per reply and memory growing with the request rate (3.6 million markers an hour at
 * 1,000 requests/s).
 */
export function replyOptions(request: CloudEvent, group: string, source: string): PublishOptions {
  return { id: stableId(group, request.source, request.id, 'reply'), source, correlationid: request.correlationid, dedupWindowMs: 0 };
}

/**
 * The `dataschema` of a reply telling that the request was dead-lettered (its data a RequestFailure):
 * the requester rejects with RequestFailedError at once instead of waiting out `timeoutMs`.
 */
export const REQUEST_FAILED_SCHEMA = 'urn:agentbus:request-failed';
/** Most bytes of `error` a failure reply carries (the dead letter keeps it whole); a quarter of maxPayloadBytes at most. */
const MAX_FAILURE_ERROR_BYTES = 2000;
/** Most bytes of `reason` (ctx.deadLetter's, any length); an eighth of maxPayloadBytes at most. */
const MAX_FAILURE_REASON_BYTES = 200;

/** Why a request was dead-lettered, as its failure reply carries it. */
export interface RequestFailure {
  reason: string;
  error: string;
}

/**
 * The data and options of the failure reply to `request`, dead-lettered in `group`: its reason and
 * error cut to fit well inside `maxBytes` (the bus' maxPayloadBytes), so the reply is not refused.
 */
export function failureReply(request: CloudEvent, group: string, source: string, f: RequestFailure, maxBytes: number): { data: unknown; options: PublishOptions } {
  const reason = fitBytes(f.reason, Math.min(MAX_FAILURE_REASON_BYTES, Math.floor(maxBytes / 8)));
  const error = fitBytes(f.error, Math.min(MAX_FAILURE_ERROR_BYTES, Math.floor(maxBytes / 4)));
  return { data: { group, reason, error }, options: { ...replyOptions(request, group, source), dataschema: REQUEST_FAILED_SCHEMA } };
}

/** `text` cut to at most `max` UTF-8 bytes, on a character boundary, `...` marking the cut. */
export function fitBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let bytes = 3;
  let out = '';
  for (const ch of text) {
    bytes += Buffer.byteLength(ch);
    if (bytes > max) break;
    out += ch;
  }
  return `${out}...`;
}

/** The RequestFailedError a failure reply `e` (REQUEST_FAILED_SCHEMA) to a request of `type` tells. */
export function failedError(type: string, e: CloudEvent): RequestFailedError {
  const f = (e.data ?? {}) as { group?: string; reason?: string; error?: string };
  const [group, reason, error] = [String(f.group), String(f.reason), String(f.error ?? '')];
  return new RequestFailedError(`request ${type} (correlationid ${e.correlationid}) was dead-lettered by group ${group} (${reason})${error ? `: ${error}` : ''}`, group, reason, error);
}

export class Requests {
  readonly topic = REPLY_PREFIX + randomBytes(6).toString('hex');
  private readonly waiting = new Map<string, Waiting>();
  private inbox: Promise<Subscription> | null = null;
  private closed = false;

  constructor(
    private readonly bus: Pick<Bus, 'publish' | 'subscribe'>,
    private readonly tell: RequestEvents = NOBODY,
  ) {}

  /** Publishes `type` as a request and resolves with the reply's data, or rejects with RequestTimeoutError. */
  async request<R = unknown>(type: string, data: unknown, o: RequestOptions = {}): Promise<R> {
    if (this.closed) throw new BusClosedError(`request ${type}`);
    const { timeoutMs, ...publish } = o ?? {};
    const ms = int('request timeoutMs', timeoutMs, REQUEST_TIMEOUT_MS, 1, 86_400_000);
    if ('correlationid' in publish || 'replyto' in publish) throw invalid('INVALID_OPTION', 'request sets correlationid and replyto itself');
    checkType(type); // before it is counted: observers label by type, which must be a valid one
    const started = performance.now();
    await (this.inbox ??= this.openInbox());
    const correlationid = randomUUID();
    this.tell.sent(type);
    const reply = new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(correlationid);
        this.tell.ended({ type, outcome: 'timed_out', durationMs: performance.now() - started });
        reject(new RequestTimeoutError(`no reply to ${type} within ${ms} ms (correlationid ${correlationid})`));
      }, ms);
      this.waiting.set(correlationid, { resolve: resolve as (d: unknown) => void, reject, timer, type, started });
    });
    try {
      await this.bus.publish(type, data, { ...publish, correlationid, replyto: this.topic });
    } catch (err) {
      const w = this.waiting.get(correlationid);
      if (w) {
        clearTimeout(w.timer);
        this.waiting.delete(correlationid);
        this.tell.ended({ type, outcome: 'failed', durationMs: performance.now() - started });
      }
      throw err;
    }
    return reply;
  }

  /** Whether this bus made its reply topic (its first request): bus.close then removes it (replies.ts). */
  get opened(): boolean {
    return this.inbox !== null;
  }

  /** The reply subscription: made before the first request is published, so no reply is missed. */
  private openInbox(): Promise<Subscription> {
    return this.bus.subscribe({ group: this.topic, types: [this.topic], concurrency: 64 }, (e) => this.received(e));
  }

  private received(e: CloudEvent): void {
    const w = e.correlationid === undefined ? undefined : this.waiting.get(e.correlationid);
    if (w === undefined) return this.tell.dropped();
    this.waiting.delete(e.correlationid!);
    clearTimeout(w.timer);
    if (e.dataschema === REQUEST_FAILED_SCHEMA) {
      this.tell.ended({ type: w.type, outcome: 'failed', durationMs: performance.now() - w.started });
      return w.reject(failedError(w.type, e));
    }
    this.tell.ended({ type: w.type, outcome: 'replied', durationMs: performance.now() - w.started });
    w.resolve(e.data);
  }

  /** Rejects requests still waiting and stops the reply subscription (called by bus.close before subscriptions close). */
  close(): void {
    this.closed = true;
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      this.tell.ended({ type: w.type, outcome: 'failed', durationMs: performance.now() - w.started });
      w.reject(new BusClosedError(`request ${id}`));
    }
    this.waiting.clear();
  }
}
