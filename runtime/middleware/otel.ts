// OpenTelemetry consumer spans (see ../tracing.ts): one span per delivery, a child of the event's
// traceparent; what the handler publishes carries this span's context, so the next hop is its
// child. Retries and dead letters are span events: `agentbus.retry` (attempt) when a failure gets
// another attempt, `agentbus.dead_letter` (reason) when the delivery ends as a dead letter.
// Only in the middleware list when tracing is on (AgentInstance.middleware()).
import { NonRetryableError } from '../../bus/errors.js';
import { isA } from '../../bus/thrown.js';
import type { HandlerContext } from '../../agents/base.js';
import type { ConsumerSpan, Tracing } from '../tracing.js';
import type { Observer } from '../observers/observer.js';
import type { Middleware } from './middleware.js';
import { traced } from './trace.js';

/**
 * The middleware and its observer, sharing the spans of failed deliveries: the consumer reports a
 * failure's outcome (retry or not) right after the handler settles, before the next macrotask, so
 * such a span ends on setImmediate, once the observer has added the event.
 */
export function otelSpans(tracing: Tracing): { middleware: Middleware; observer: Observer } {
  const failed = new Map<string, ConsumerSpan>();
  const middleware: Middleware = (next) => async (event, ctx) => {
    const span = tracing.consume(event, ctx);
    const c = withSpan(ctx, span);
    try {
      const result = await span.run(() => next(event, c));
      span.end();
      return result;
    } catch (err) {
      span.fail(err);
      const key = `${ctx.position}\0${ctx.attempt}`;
      failed.set(key, span);
      setImmediate(() => {
        failed.delete(key);
        span.end();
      });
      throw err;
    }
  };
  const observer: Observer = (o) => {
    if (o.outcome !== 'failed') return;
    const span = failed.get(`${o.position}\0${o.attempt}`);
    if (span === undefined) return;
    if (o.retry) span.event('agentbus.retry', { 'agentbus.attempt': o.attempt });
    else span.event('agentbus.dead_letter', { 'agentbus.dead_letter.reason': isA(o.error, NonRetryableError) ? 'non_retryable' : 'failed' });
  };
  return { middleware, observer };
}

/** ctx whose publishes carry the span's traceparent and whose deadLetter is a span event. */
function withSpan(ctx: HandlerContext, span: ConsumerSpan): HandlerContext {
  const t = traced(ctx, span.traceparent) as { -readonly [K in keyof HandlerContext]: HandlerContext[K] };
  t.deadLetter = (reason: string) => {
    span.event('agentbus.dead_letter', { 'agentbus.dead_letter.reason': reason });
    ctx.deadLetter(reason);
  };
  return t;
}
