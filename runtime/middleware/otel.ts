// OpenTelemetry consumer spans (see ../tracing.ts): one span per delivery, a child of the event's
// traceparent; what the handler publishes carries this span's context, so the next hop is its
// child. Retries, dead letters and timeouts are span events: `agentbus.retry` (attempt) when a
// failure gets another attempt, `agentbus.dead_letter` (reason) when the delivery ends as a dead
// letter, `agentbus.timeout` (attempt) when the handler ran past its `timeoutMs`.
// In the middleware list instead of propagateTrace when tracing is on (AgentInstance.middleware()).
import { NonRetryableError, TimeoutError } from '../../bus/errors.js';
import { isA } from '../../bus/thrown.js';
import type { AgentHandler, HandlerContext, KeyedContext } from '../../agents/base.js';
import type { CloudEvent, EventInput, PublishOptions } from '../../bus/event.js';
import type { KeyedRequestOptions, WaitOptions } from '../../bus/keyed/contract.js';
import type { ConsumerSpan, Tracing } from '../tracing.js';
import type { Observer } from '../observers/observer.js';
import type { Middleware } from './middleware.js';
import { propagateTrace } from './trace.js';

/**
 * The middleware and its observer, sharing the spans of deliveries in flight (by position and
 * attempt). The consumer reports a failure's outcome (retry or not) right after the handler
 * settles, before the next macrotask, so a failed span ends on setImmediate, once the observer has
 * added its event. A handler past its `timeoutMs` is reported failed while it still runs: the
 * observer then notes `agentbus.timeout` and ends its span (whatever the handler does later).
 * Replaces propagateTrace (trace.ts) in the list: what the handler publishes carries this span's
 * traceparent, or the event's when the span has none. A handler returning a value (not a promise)
 * gets no extra tick. While the API is idle (tracing.idle(): no SDK registered) a delivery gets no
 * span, only propagateTrace: the same traceparent on what it publishes, at no cost per event.
 */
export function otelSpans(tracing: Tracing): { middleware: Middleware; observer: Observer } {
  const open = new Map<string, ConsumerSpan>();
  const done = (key: string, span: ConsumerSpan) => {
    if (open.get(key) === span) open.delete(key);
    span.end();
  };
  const fail = (key: string, span: ConsumerSpan, err: unknown) => {
    span.fail(err);
    setImmediate(() => done(key, span));
  };
  const middleware: Middleware = (next) => {
    const untraced = propagateTrace(next);
    return (event, ctx) => (tracing.idle() ? untraced(event, ctx) : traced(next, event, ctx));
  };
  const traced = (next: AgentHandler, event: CloudEvent, ctx: HandlerContext): unknown => {
    const span = tracing.consume(event, ctx);
    const key = `${ctx.position}\0${ctx.attempt}`;
    open.set(key, span);
    const c = new SpanContext(ctx, span, span.traceparent ?? event.traceparent);
    let result: unknown;
    try {
      result = span.run(() => next(event, c));
    } catch (err) {
      fail(key, span, err);
      throw err;
    }
    if (result === null || typeof (result as Promise<unknown>)?.then !== 'function') {
      done(key, span);
      return result;
    }
    return (result as Promise<unknown>).then(
      (v) => {
        done(key, span);
        return v;
      },
      (err: unknown) => {
        fail(key, span, err);
        throw err;
      },
    );
  };
  const observer: Observer = (o) => {
    if (o.outcome !== 'failed') return;
    const key = `${o.position}\0${o.attempt}`;
    const span = open.get(key);
    if (span === undefined) return;
    const timedOut = isA(o.error, TimeoutError);
    if (timedOut) {
      span.event('agentbus.timeout', { 'agentbus.attempt': o.attempt });
      span.fail(o.error);
    }
    if (o.retry) span.event('agentbus.retry', { 'agentbus.attempt': o.attempt });
    else span.event('agentbus.dead_letter', { 'agentbus.dead_letter.reason': isA(o.error, NonRetryableError) ? 'non_retryable' : 'failed' });
    if (timedOut) done(key, span);
  };
  return { middleware, observer };
}

/**
 * The handler's context with publishes carrying `traceparent` (when there is one) and deadLetter
 * noted on the span; everything else is ctx's own. A class forwarding to ctx rather than
 * Object.create(ctx) (trace.ts): a per-delivery object made a prototype costs V8 a map change.
 * A member added to the handler context (instance.ts Handling) is forwarded here too.
 */
class SpanContext implements HandlerContext {
  constructor(
    private readonly ctx: HandlerContext,
    private readonly span: ConsumerSpan,
    private readonly traceparent: string | undefined,
  ) {}
  get agent() { return this.ctx.agent; }
  get logger() { return this.ctx.logger; }
  get signal() { return this.ctx.signal; }
  get bus() { return this.ctx.bus; }
  get replaying() { return this.ctx.replaying; }
  get event() { return this.ctx.event; }
  get attempt() { return this.ctx.attempt; }
  get position() { return this.ctx.position; }
  get group() { return this.ctx.group; }
  get consumer() { return this.ctx.consumer; }
  /** A keyed agent's key and state (KeyedContext), the handler's own context's: read and assigned through. */
  get key() { return (this.ctx as Partial<KeyedContext>).key; }
  get state() { return (this.ctx as Partial<KeyedContext>).state; }
  set state(v: unknown) { (this.ctx as KeyedContext).state = v; }
  publish<T>(type: string, data: T, options?: PublishOptions): Promise<string> {
    const tp = this.traceparent;
    return this.ctx.publish(type, data, tp === undefined ? options : { traceparent: tp, ...options });
  }
  publishBatch(events: EventInput[]): Promise<string[]> {
    const tp = this.traceparent;
    return this.ctx.publishBatch(tp === undefined || !Array.isArray(events) ? events : events.map((e) => ({ traceparent: tp, ...e })));
  }
  request<R = unknown>(type: string, data: unknown, options?: KeyedRequestOptions): Promise<R> {
    const tp = this.traceparent;
    return this.ctx.request<R>(type, data, tp === undefined ? options : { traceparent: tp, ...options });
  }
  schedule(type: string, data: unknown, options: Parameters<HandlerContext['schedule']>[2]): Promise<string> {
    return this.ctx.schedule(type, data, options);
  }
  cancelSchedule(name: string): Promise<boolean> {
    return this.ctx.cancelSchedule(name);
  }

  waitFor<T = unknown>(type: string, options: WaitOptions<T>): Promise<CloudEvent<T>> {
    return this.ctx.waitFor<T>(type, options);
  }
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    return this.ctx.step<T>(name, fn);
  }
  retryIn(ms: number): void {
    this.ctx.retryIn(ms);
  }
  reply(value: unknown): void {
    this.ctx.reply(value);
  }
  deadLetter(reason: string): void {
    this.span.event('agentbus.dead_letter', { 'agentbus.dead_letter.reason': reason });
    this.ctx.deadLetter(reason);
  }
  setInterval(fn: () => unknown, ms: number): void { this.ctx.setInterval(fn, ms); }
  setTimeout(fn: () => unknown, ms: number): void { this.ctx.setTimeout(fn, ms); }
  crash(error: unknown): void { this.ctx.crash(error); }
  exit(): void { this.ctx.exit(); }
}
