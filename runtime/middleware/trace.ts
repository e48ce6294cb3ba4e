// Trace propagation: what a handler publishes through its context carries the traceparent of the
// event it handles (W3C Trace Context), so a trace follows an event through every agent it causes.
import type { HandlerContext } from '../../agents/base.js';
import type { EventInput, PublishOptions } from '../../bus/event.js';
import type { Middleware } from './middleware.js';

/**
 * An event with a traceparent gets a context whose publish and publishBatch set it on every event
 * that does not set its own; an event without one gets its context untouched (nothing allocated).
 */
export const propagateTrace: Middleware = (next) => (event, ctx) => {
  const traceparent = event.traceparent;
  return traceparent === undefined ? next(event, ctx) : next(event, traced(ctx, traceparent));
};

/** `ctx` with publish and publishBatch carrying `traceparent`; everything else is ctx's own (its prototype). */
function traced(ctx: HandlerContext, traceparent: string): HandlerContext {
  const t = Object.create(ctx) as { -readonly [K in keyof HandlerContext]: HandlerContext[K] };
  t.publish = <T>(type: string, data: T, options?: PublishOptions) => ctx.publish(type, data, { traceparent, ...options });
  t.publishBatch = (events: EventInput[]) => ctx.publishBatch(Array.isArray(events) ? events.map((e) => ({ traceparent, ...e })) : events);
  return t;
}
