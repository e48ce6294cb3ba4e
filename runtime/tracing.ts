// OpenTelemetry, when the application has `@opentelemetry/api` (an optional peer dependency): the
// package is imported once, on the first host start, and only then; without it nothing here runs
// and nothing is allocated per event. Spans follow the messaging semantic conventions: a producer
// span per published event, whose context becomes the event's `traceparent` (W3C Trace Context),
// and a consumer span per delivery (middleware/otel.ts), a child of that traceparent, so a chain
// of agents across processes is one trace. The W3C header is read and written here, not through
// the global propagator, so the link holds whatever propagator the application registered.
import type * as Otel from '@opentelemetry/api';

/** The system name in `messaging.system`. */
export const MESSAGING_SYSTEM = 'agentbus';

/** One producer span: the traceparent to store with the event, and its end once stored or refused. */
export interface ProducerSpan {
  readonly traceparent: string;
  end(id: string | undefined, error?: unknown): void;
}

/** A started consumer span as the middleware uses it (the API's Span, kept out of the package's types). */
export interface ConsumerSpan {
  readonly traceparent: string;
  event(name: string, attributes: Record<string, string | number>): void;
  fail(error: unknown): void;
  end(): void;
  /** Runs `fn` with this span as the active span (for the application's own instrumentation). */
  run<T>(fn: () => T): T;
}

/** The tracing seam the runtime uses: made once per process, when the API is present. */
export interface Tracing {
  /** A producer span for one event of `type`, a child of `traceparent` when given, else of the active context. */
  produce(type: string, id: string | undefined, traceparent: string | undefined): ProducerSpan;
  /** A consumer span for one delivery, a child of the event's traceparent when it has one. */
  consume(event: { type: string; id: string; traceparent?: string | undefined }, d: { group: string; consumer: string; attempt: number }): ConsumerSpan;
}

let loaded: Promise<Tracing | null> | undefined;

/** The process' Tracing, or null when `@opentelemetry/api` cannot be imported. Imported once, cached. */
export function loadTracing(): Promise<Tracing | null> {
  return (loaded ??= import('@opentelemetry/api').then(
    (api) => tracingFrom(api),
    () => null,
  ));
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The remote span context a W3C traceparent names, or undefined for a malformed or all-zero one. */
export function parseTraceparent(header: string | undefined): Otel.SpanContext | undefined {
  const m = header === undefined ? null : TRACEPARENT.exec(header);
  if (m === null || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) & 1, isRemote: true };
}

export function formatTraceparent(c: Otel.SpanContext): string {
  return `00-${c.traceId}-${c.spanId}-0${c.traceFlags & 1}`;
}

function tracingFrom(api: typeof Otel): Tracing {
  const tracer = api.trace.getTracer(MESSAGING_SYSTEM);
  const parentOf = (traceparent: string | undefined): Otel.Context => {
    const sc = parseTraceparent(traceparent);
    return sc ? api.trace.setSpanContext(api.ROOT_CONTEXT, sc) : api.context.active();
  };
  return {
    produce(type, id, traceparent) {
      const attributes: Otel.Attributes = {
        'messaging.system': MESSAGING_SYSTEM,
        'messaging.destination.name': type,
        'messaging.operation': 'publish',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'publish',
      };
      if (id !== undefined) attributes['messaging.message.id'] = id;
      const span = tracer.startSpan(`publish ${type}`, { kind: api.SpanKind.PRODUCER, attributes }, parentOf(traceparent));
      return {
        traceparent: formatTraceparent(span.spanContext()),
        end(storedId, error) {
          if (storedId !== undefined && id === undefined) span.setAttribute('messaging.message.id', storedId);
          if (error !== undefined) failSpan(api, span, error);
          span.end();
        },
      };
    },
    consume(event, d) {
      const parent = parentOf(event.traceparent);
      const span = tracer.startSpan(
        `process ${event.type}`,
        {
          kind: api.SpanKind.CONSUMER,
          attributes: {
            'messaging.system': MESSAGING_SYSTEM,
            'messaging.destination.name': event.type,
            'messaging.operation': 'process',
            'messaging.operation.type': 'process',
            'messaging.operation.name': 'process',
            'messaging.message.id': event.id,
            'messaging.consumer.group.name': d.group,
            'messaging.client.id': d.consumer,
            'agentbus.attempt': d.attempt,
          },
        },
        parent,
      );
      const active = api.trace.setSpan(parent, span);
      return {
        traceparent: formatTraceparent(span.spanContext()),
        event: (name, attributes) => void span.addEvent(name, attributes),
        fail: (error) => failSpan(api, span, error),
        end: () => span.end(),
        run: (fn) => api.context.with(active, fn),
      };
    },
  };
}

function failSpan(api: typeof Otel, span: Otel.Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}
