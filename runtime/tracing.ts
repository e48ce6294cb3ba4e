// OpenTelemetry, when the application has `@opentelemetry/api` (an optional peer dependency): the
// package is imported once, on the first host start, and only then; without it nothing here runs
// and nothing is allocated per event. Spans follow the messaging semantic conventions: a producer
// span per published event, whose context becomes the event's `traceparent` (W3C Trace Context),
// and a consumer span per delivery (middleware/otel.ts), a child of that traceparent, so a chain
// of agents across processes is one trace. The W3C header is read and written here, not through
// the global propagator, so the link holds whatever propagator the application registered.
import type * as Otel from '@opentelemetry/api';
import { describe, isA } from '../bus/thrown.js';

/** The system name in `messaging.system`. */
export const MESSAGING_SYSTEM = 'agentbus';

/**
 * One producer span: the traceparent to store with the event, and its end once stored or refused.
 * `traceparent` is undefined when the span has no valid context (the API without an SDK, and no
 * parent): the event then keeps whatever traceparent it was given.
 */
export interface ProducerSpan {
  readonly traceparent: string | undefined;
  end(id: string | undefined, error?: unknown): void;
}

/** A started consumer span as the middleware uses it (the API's Span, kept out of the package's types). */
export interface ConsumerSpan {
  /** Undefined when the span has no valid context (see ProducerSpan). */
  readonly traceparent: string | undefined;
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
  /**
   * True while the application has registered neither a tracer provider nor a context manager
   * (the API without an SDK): a span would then record nothing and change no active context, so
   * the runtime skips it (produce() returns the parent's traceparent alone, the consumer middleware
   * only propagates the trace). Read on every call, so an SDK registered after the host started is
   * used from its next delivery or publish on.
   */
  idle(): boolean;
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

/** The API's SpanContext, said here so the package's declarations need no `@opentelemetry/api`. */
export interface W3CSpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean | undefined;
}

/** The remote span context a W3C traceparent names, or undefined for a malformed or all-zero one. */
export function parseTraceparent(header: string | undefined): W3CSpanContext | undefined {
  const m = header === undefined ? null : TRACEPARENT.exec(header);
  if (m === null || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) & 1, isRemote: true };
}

/** The W3C traceparent of a span context; undefined for an invalid one (a non-recording span without parent). */
export function formatTraceparent(c: W3CSpanContext): string | undefined {
  if (/^0+$/.test(c.traceId) || /^0+$/.test(c.spanId)) return undefined;
  return `00-${c.traceId}-${c.spanId}-0${c.traceFlags & 1}`;
}

/**
 * Where `@opentelemetry/api` 1.x keeps what the application registered (tracer provider under
 * `trace`, context manager under `context`): one object on globalThis, shared by every copy of the
 * API 1.x in the process, which is how the API itself finds them. Entries are deleted by `disable()`.
 */
const REGISTERED = Symbol.for('opentelemetry.js.api.1');

/** The producer span of an idle API: no span, the parent's context as the API's no-op tracer would give it. */
class IdleProducerSpan implements ProducerSpan {
  constructor(readonly traceparent: string | undefined) {}
  end(): void {}
}
const NO_PRODUCER_SPAN = new IdleProducerSpan(undefined);

function tracingFrom(api: typeof Otel): Tracing {
  return new OtelTracing(api);
}

/** Classes, not closures per span: a span costs its objects and the API's calls, nothing more. */
class OtelTracing implements Tracing {
  private readonly tracer: Otel.Tracer;
  constructor(private readonly api: typeof Otel) {
    this.tracer = api.trace.getTracer(MESSAGING_SYSTEM);
  }

  private parentOf(traceparent: string | undefined): Otel.Context {
    const sc = parseTraceparent(traceparent);
    return sc ? this.api.trace.setSpanContext(this.api.ROOT_CONTEXT, sc) : this.api.context.active();
  }

  idle(): boolean {
    const registered = (globalThis as { [REGISTERED]?: { trace?: unknown; context?: unknown } })[REGISTERED];
    return registered === undefined || (registered.trace === undefined && registered.context === undefined);
  }

  produce(type: string, id: string | undefined, traceparent: string | undefined): ProducerSpan {
    if (this.idle()) {
      // What the no-op tracer returns: the parent's span context (none without a valid one: no context manager, no active span).
      const parent = traceparent === undefined ? undefined : parseTraceparent(traceparent);
      return parent === undefined ? NO_PRODUCER_SPAN : new IdleProducerSpan(formatTraceparent(parent));
    }
    const attributes: Otel.Attributes = {
      'messaging.system': MESSAGING_SYSTEM,
      'messaging.destination.name': type,
      'messaging.operation': 'publish',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish',
    };
    if (id !== undefined) attributes['messaging.message.id'] = id;
    const span = this.tracer.startSpan(`publish ${type}`, { kind: this.api.SpanKind.PRODUCER, attributes }, this.parentOf(traceparent));
    return new OtelProducerSpan(this.api, span, id === undefined);
  }

  consume(event: { type: string; id: string; traceparent?: string | undefined }, d: { group: string; consumer: string; attempt: number }): ConsumerSpan {
    const parent = this.parentOf(event.traceparent);
    const attributes: Otel.Attributes = {
      'messaging.system': MESSAGING_SYSTEM,
      'messaging.destination.name': event.type,
      'messaging.operation': 'process',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.message.id': event.id,
      'messaging.consumer.group.name': d.group,
      'messaging.client.id': d.consumer,
      'agentbus.attempt': d.attempt,
    };
    const span = this.tracer.startSpan(`process ${event.type}`, { kind: this.api.SpanKind.CONSUMER, attributes }, parent);
    return new OtelConsumerSpan(this.api, span, parent);
  }
}

class OtelProducerSpan implements ProducerSpan {
  readonly traceparent: string | undefined;
  constructor(
    private readonly api: typeof Otel,
    private readonly span: Otel.Span,
    /** The id is the store's: known once stored. */
    private readonly idLater: boolean,
  ) {
    this.traceparent = formatTraceparent(span.spanContext());
  }

  end(storedId: string | undefined, error?: unknown): void {
    if (storedId !== undefined && this.idLater) this.span.setAttribute('messaging.message.id', storedId);
    if (error !== undefined) failSpan(this.api, this.span, error);
    this.span.end();
  }
}

class OtelConsumerSpan implements ConsumerSpan {
  readonly traceparent: string | undefined;
  /** Ended once: a timed-out handler's span ends at the timeout, and again (ignored) when it settles. */
  private ended = false;
  constructor(
    private readonly api: typeof Otel,
    private readonly span: Otel.Span,
    private readonly parent: Otel.Context,
  ) {
    this.traceparent = formatTraceparent(span.spanContext());
  }

  event(name: string, attributes: Record<string, string | number>): void {
    if (!this.ended) this.span.addEvent(name, attributes);
  }

  fail(error: unknown): void {
    if (!this.ended) failSpan(this.api, this.span, error);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.span.end();
  }

  run<T>(fn: () => T): T {
    return this.api.context.with(this.api.trace.setSpan(this.parent, this.span), fn);
  }
}

/**
 * The error as an exception event and the span's status. Anything can be thrown (null-prototype
 * objects, revoked proxies): described by describe(), and an Error the SDK cannot read is recorded
 * by that description instead.
 */
function failSpan(api: typeof Otel, span: Otel.Span, error: unknown): void {
  const message = describe(error);
  try {
    span.recordException(isA(error, Error) ? (error as Error) : message);
  } catch {
    span.recordException(message);
  }
  span.setStatus({ code: api.SpanStatusCode.ERROR, message });
}
