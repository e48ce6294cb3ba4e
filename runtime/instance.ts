// One run of an agent (AgentInstance) and the context each of its handler calls gets (Handling).
// What wraps handler calls is middleware (runtime/middleware/), what watches outcomes observers
// (runtime/observers/): each composed here from one list.
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from 'pino';
import type { Bus, DeliveryContext, DeliveryOutcome, ReplayOptions, ReplayResult, Subscription } from '../bus/contract.js';
import type { CloudEvent, EventInput, PublishOptions } from '../bus/event.js';
import { describe, errForLog, isA } from '../bus/thrown.js';
import { invalid, misuse, TimeoutError } from '../bus/errors.js';
import { answering } from '../bus/requests.js';
import { handlerFor, ownMethod, type AgentClass, type AgentContext, type AgentHandler, type AgentHooks, type BaseAgent, type HandlerContext } from '../agents/base.js';
import type { ResolvedAgent } from './agent-spec.js';
import type { ReplayCapture } from './capture.js';
import { compose, type Middleware } from './middleware/middleware.js';
import { propagateTrace } from './middleware/trace.js';
import { otelSpans } from './middleware/otel.js';
import type { ProducerSpan, Tracing } from './tracing.js';
import { observeAll, type Observer } from './observers/observer.js';
import { countOutcomes } from './observers/metrics.js';
import { logRetries } from './observers/retry-log.js';
import { agentBreaker } from './observers/breaker.js';
import { derivedId, isKeyed, keyedSource, runMachine, ScratchStates } from './keyed.js';
import type { KeyedContext } from '../agents/base.js';
import type { KeyedRequestOptions, WaitOptions } from '../bus/keyed/contract.js';
import type { RequestOptions } from '../bus/contract-options.js';
import { reminderName, reminderOptions, runSchedule, type ReminderOptions } from './schedules.js';
import type { KeyedSource } from './metrics.js';

/** Most topics whose handler an instance remembers. */
const HANDLER_CACHE = 1024;

/** What an instance needs from its host. */
export interface InstanceHost {
  bus: Bus;
  hostId: string;
  logger: Logger;
  als: AsyncLocalStorage<AgentInstance>;
  /** Reports this agent's crash / normal exit to the supervisor. */
  crash(agent: string, error: unknown): void;
  exit(agent: string): void;
  /** The host's metrics (HostMetrics): outcomes counted by an observer, publishes once stored, keyed subscriptions watched while open. */
  metrics: { outcome(o: DeliveryOutcome): void; publish(type: string): void; watchKeyed(agent: string, sub: KeyedSource): () => void };
  /** OpenTelemetry spans (tracing.ts), or null when off or `@opentelemetry/api` is absent. */
  tracing: Tracing | null;
}

/**
 * One run of an agent, from start to stop or crash: a fresh agent object, its subscriptions
 * (one per replica, group = agent name), its timers and its circuit breaker. Everything the agent
 * runs starts inside `host.als`, so an error escaping its callbacks can be traced back to it.
 */
export class AgentInstance implements AgentContext {
  readonly agent: string;
  readonly logger: Logger;
  private object: (BaseAgent & AgentHooks) | null = null;
  private readonly subs: Subscription[] = [];
  /** Ends the metrics' watch of each keyed subscription (called once they closed). */
  private readonly unwatch: Array<() => void> = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly aborter = new AbortController();
  /** Handler per topic, at most HANDLER_CACHE entries (topics can be many: patterns, foreign streams). */
  private readonly handlers = new Map<string, AgentHandler | null>();
  private started: Promise<void> = Promise.resolve();
  private closed = false;
  /** Routing to the agent's handler, inside the middleware (see middleware()). */
  private readonly handle: AgentHandler;
  readonly source: string;
  private readonly replayBus: Bus | null;
  /** Consumer spans' middleware and observer; null without tracing and in a replay (nothing is delivered). */
  private readonly otel: ReturnType<typeof otelSpans> | null;
  /** A keyed agent's replay: its keys' scratch state (never the live one). */
  private readonly scratch: ScratchStates | null;

  constructor(
    private readonly spec: ResolvedAgent,
    private readonly host: InstanceHost,
    /** Set for an instance made to replay: its publishes go through it (captured unless `stored`). */
    private readonly capture: ReplayCapture | null = null,
  ) {
    this.agent = spec.name;
    this.logger = host.logger.child({ agent: spec.name });
    this.source = `/agentbus/${host.hostId}/${spec.name}`;
    this.replayBus = capture ? capture.wrap(host.bus, this.source) : null;
    this.otel = host.tracing && !capture ? otelSpans(host.tracing) : null;
    this.scratch = capture && spec.subscribe.key !== undefined ? new ScratchStates(spec.subscribe.key, spec.subscribe.initialState) : null;
    this.handle = compose(this.middleware(), (event, ctx) => this.route(event, ctx));
  }

  /** What wraps every handler call (live or replayed), outermost first: one line per concern. */
  private middleware(): Middleware[] {
    // With tracing, the span's middleware propagates the trace itself (the span's traceparent, not the event's).
    return [this.otel ? this.otel.middleware : propagateTrace];
  }

  /**
   * What watches every delivery's outcome, in this order: one line per concern. Made once per
   * instance and shared by its replicas' subscriptions, so the breaker counts agent-wide.
   */
  private observers(): Observer[] {
    const list = [countOutcomes(this.host.metrics), logRetries(this.logger), agentBreaker(this.agent, this.spec.breakerFailures, (err) => this.crash(err))];
    return this.otel ? [this.otel.observer, ...list] : list;
  }

  get signal(): AbortSignal {
    return this.aborter.signal;
  }

  /** True in an instance made by host.replay(): handlers see stored events again. */
  get replaying(): boolean {
    return this.capture !== null;
  }

  /** During a replay, the bus with its publishes captured (or, with `publish: true`, noted). */
  get bus(): Bus {
    return this.replayBus ?? this.host.bus;
  }

  /** The bus' in-memory request; in a replay that stores nothing, captured, not sent, rejected (ReplayCapture.request). */
  request<R>(type: string, data: unknown, options: RequestOptions): Promise<R> {
    if (this.capture !== null && !this.capture.stored) return this.capture.request(type, data, options, this.source);
    return this.host.bus.request<R>(type, data, options);
  }

  /** Internal, for tests: how many topics' handlers are cached. */
  get cachedHandlers(): number {
    return this.handlers.size;
  }

  start(): Promise<void> {
    this.started = this.host.als.run(this, () => this.open());
    return this.started;
  }

  /**
   * Replay: a fresh instance runs onStart, gets the stored events through its handlers (no
   * subscription, no group moved), then onStop.
   */
  async replay(options: ReplayOptions): Promise<ReplayResult> {
    this.started = this.host.als.run(this, () => this.open(false));
    await this.started;
    try {
      return await this.host.bus.replay(options, (event, d) => this.dispatch(event, d));
    } finally {
      await this.stop();
    }
  }

  private async open(subscribe = true): Promise<void> {
    const cls: AgentClass = this.spec.cls;
    this.object = new cls() as BaseAgent & AgentHooks;
    await this.object.onStart?.(this);
    const { replicas, subscribe: so } = this.spec;
    const types = cls.subscriptions ?? [];
    const onOutcome = observeAll(this.observers());
    for (const s of subscribe ? this.spec.schedules : []) {
      this.stopSchedules.push(runSchedule(this.host.bus, this.agent, s, (err) => this.logger.error({ err: errForLog(err), type: s.type }, 'store error while storing the next tick of a schedule')));
    }
    for (let i = 1; subscribe && i <= replicas && !this.closed && types.length > 0; i++) {
      const sub = await this.host.bus.subscribe(
        { ...so, group: this.agent, types: [...types], consumer: `${this.host.hostId}/${this.agent}/${i}`, onOutcome },
        (event, ctx) => this.dispatch(event, ctx),
      );
      this.subs.push(sub);
      if (so.key !== undefined && sub.keyedStats) this.unwatch.push(this.host.metrics.watchKeyed(this.agent, sub as KeyedSource));
    }
  }

  /** One delivery (live or replayed) through the middleware to the agent's handler. */
  private dispatch(event: CloudEvent, d: DeliveryContext): unknown {
    // A request reached through a pattern is answered by ctx.reply only (bus/requests.ts answers);
    // but a method of the agent's own for its type names that type as surely as a subscription
    // does: it answers with its return value (null when it returns nothing), and its dead letter
    // fails the requester at once. `handle` answers by ctx.reply only. Marked here, on the bus'
    // own context, so no middleware's wrapping of the context hides it.
    if (event.replyto !== undefined && this.spec.machine === null && ownMethod(this.object!, event.type) !== null) answering(d);
    if (this.scratch === null) return this.handle(event, new Handling(this, event, d));
    const kd = this.scratch.context(event, d);
    if (kd === null) return; // no key: a live run dead-letters it (no_key); a replay skips it
    return Promise.resolve(this.handle(event, new Handling(this, event, kd))).then(() => kd.commit());
  }

  /** Routes by topic: the bus delivers every event with `type` = the topic it was stored under. */
  private route(event: CloudEvent, ctx: HandlerContext): unknown {
    if (this.spec.machine !== null) return runMachine(this.spec.machine, event, ctx as KeyedContext<unknown>);
    const topic = event.type;
    let h = this.handlers.get(topic);
    if (h === undefined) {
      // An awaited type (static waitsFor) no wait took goes to its own on<Type> method only, not to handle().
      h = this.spec.subscribe.waitsFor?.includes(topic) ? ownMethod(this.object!, topic) : handlerFor(this.object!, topic);
      // Past the bound a miss is computed each time, uncached: memory stays bounded whatever the topics.
      if (this.handlers.size < HANDLER_CACHE) this.handlers.set(topic, h);
    }
    if (h === null) {
      // An awaited type no wait took, without a method of its own (README, Waiting durably): acknowledged.
      if (this.spec.subscribe.waitsFor?.includes(topic)) return;
      ctx.deadLetter('no_handler');
      return;
    }
    return h(event, ctx);
  }

  /** Graceful: drain the subscriptions (handlers in flight finish and are acknowledged), then onStop. */
  async stop(): Promise<void> {
    await this.started.catch(() => {});
    this.closed = true;
    await this.closeSubs();
    this.clearTimers();
    try {
      await this.host.als.run(this, async () => this.object?.onStop?.(this));
    } finally {
      this.aborter.abort(new Error(`agent ${this.agent} stopped`));
    }
  }

  /** After a crash: the signal fires first so handlers can give up, then the subscriptions drain; no onStop. */
  async teardown(): Promise<void> {
    this.closed = true;
    this.aborter.abort(new Error(`agent ${this.agent} crashed`));
    this.clearTimers();
    await this.started.catch(() => {});
    this.clearTimers();
    await this.closeSubs();
  }

  private async closeSubs(): Promise<void> {
    try {
      await Promise.all(this.subs.map((s) => s.close()));
    } finally {
      for (const end of this.unwatch.splice(0)) end();
    }
  }

  private readonly stopSchedules: Array<() => void> = [];

  private clearTimers(): void {
    for (const stop of this.stopSchedules.splice(0)) stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Errors from this instance after it closed belong to nobody: logged, never a crash of the next instance. */
  crash(error: unknown): void {
    if (this.closed) return void this.logger.warn({ err: errForLog(error) }, 'error from a stopped agent instance (ignored)');
    this.host.crash(this.agent, error);
  }

  exit(): void {
    if (!this.closed) this.host.exit(this.agent);
  }

  /**
   * Counted in the metrics once stored: a refused publish is not a published event. While replaying,
   * through the replay's capture (see ReplayCapture): nothing stored nor counted unless asked to publish.
   */
  publish<T>(type: string, data: T, options?: PublishOptions): Promise<string> {
    const bus = this.replayBus ?? this.host.bus;
    const tracing = this.capture === null ? this.host.tracing : null;
    // A producer span per event (tracing.ts): its context is the traceparent stored with the event.
    const span = tracing && options !== null && typeof type === 'string' ? tracing.produce(type, options?.id, options?.traceparent) : null;
    const p = bus.publish(type, data, span?.traceparent ? { source: this.source, ...options, traceparent: span.traceparent } : { source: this.source, ...options });
    if (this.capture === null || this.capture.stored) p.then(() => this.host.metrics.publish(type), () => {});
    if (span) p.then((id) => span.end(id), (err) => span.end(undefined, err));
    return p;
  }

  publishBatch(events: EventInput[]): Promise<string[]> {
    const bus = this.replayBus ?? this.host.bus;
    const tracing = this.capture === null && Array.isArray(events) ? this.host.tracing : null;
    let spans: ProducerSpan[] | null = null;
    let input: EventInput[] = events;
    if (tracing) {
      spans = [];
      input = events.map((e) => {
        if (e === null || typeof e !== 'object' || typeof e.type !== 'string') return e; // refused by publishBatch
        const span = tracing.produce(e.type, e.id, e.traceparent);
        spans!.push(span);
        return span.traceparent ? { source: this.source, ...e, traceparent: span.traceparent } : { source: this.source, ...e };
      });
    } else if (Array.isArray(events)) input = events.map((e) => ({ source: this.source, ...e }));
    const p = bus.publishBatch(input);
    if (this.capture === null || this.capture.stored) p.then(() => events.forEach((e) => this.host.metrics.publish(e.type)), () => {});
    if (spans) p.then((ids) => spans!.forEach((s, i) => s.end(ids[i])), (err) => spans!.forEach((s) => s.end(undefined, err)));
    return p;
  }

  setInterval(fn: () => unknown, ms: number): void {
    this.timers.add(setInterval(() => this.guard(fn), ms));
  }

  setTimeout(fn: () => unknown, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.guard(fn);
    }, ms);
    this.timers.add(t);
  }

  private guard(fn: () => unknown): void {
    try {
      const r = fn() as Promise<unknown> | undefined;
      if (r && typeof r.then === 'function') r.then(undefined, (err) => this.crash(err));
    } catch (err) {
      this.crash(err);
    }
  }
}

/** Where a handler's first schedule or cancel waits (made once, not per delivery). */
const SETTLED: Promise<unknown> = Promise.resolve();

/** The context of one handler call: the delivery's fields plus the agent's context (a traceparent is added by middleware/trace.ts). */
class Handling implements HandlerContext {
  private log: Logger | null = null;
  private sig: AbortSignal | null = null;
  constructor(
    private readonly inst: AgentInstance,
    readonly event: CloudEvent,
    private readonly d: DeliveryContext,
  ) {}
  get agent() { return this.inst.agent; }
  get bus() { return this.inst.bus; }
  get replaying() { return this.inst.replaying; }
  get attempt() { return this.d.attempt; }
  get position() { return this.d.position; }
  get group() { return this.d.group; }
  get consumer() { return this.d.consumer; }
  /** Fires at the drain timeout of a stop, or when the agent crashes. */
  get signal(): AbortSignal {
    return (this.sig ??= AbortSignal.any([this.d.signal, this.inst.signal]));
  }
  get logger(): Logger {
    return (this.log ??= this.inst.logger.child({ group: this.d.group, id: this.event.id, type: this.event.type }));
  }
  deadLetter(reason: string): void {
    this.d.deadLetter(reason);
  }
  retryIn(ms: number): void {
    this.d.retryIn(ms);
  }
  reply(value: unknown): void {
    this.d.reply(value);
  }
  /** A handler past its timeoutMs publishes nothing more (its attempt already failed and will run again). */
  private late(): Promise<never> | null {
    const r: unknown = this.d.signal.aborted ? this.d.signal.reason : undefined;
    return isA(r, TimeoutError) ? Promise.reject(new TimeoutError(`publish after the handler's timeout is dropped (${(r as TimeoutError).message})`)) : null;
  }
  /** Keyed: the key and its state (see KeyedContext); undefined for other agents. */
  get key(): string | undefined {
    return isKeyed(this.d) ? this.d.key : undefined;
  }
  get state(): unknown {
    return isKeyed(this.d) ? this.d.state : undefined;
  }
  set state(v: unknown) {
    if (isKeyed(this.d)) this.d.state = v;
  }
  /** Keyed: publishes of this handler get ids derived from the delivery (stored once however often it is redelivered). */
  private published = 0;
  private keyedOptions(o: { id?: string | undefined; source?: string | undefined } | undefined): { id: string; source: string } | undefined {
    if (!isKeyed(this.d) || this.inst.replaying) return undefined;
    return { id: o?.id ?? derivedId(this.d.group, this.event, this.published++), source: o?.source ?? keyedSource(this.inst.agent) };
  }
  publish<T>(type: string, data: T, options?: PublishOptions): Promise<string> {
    const late = this.late();
    if (late) return late;
    const k = this.keyedOptions(options);
    return this.inst.publish(type, data, k ? { ...options, ...k } : options);
  }
  /**
   * Keyed agents: a durable request by default (bus/keyed/requests.ts; published with the agent's
   * keyed source, as its other publishes), unless `durable: false`, inside a step's function, or in
   * a replay (which records nothing). Otherwise, and then: the bus' in-memory request; in a replay
   * that stores nothing, captured and not sent (ReplayCapture.request: REPLAY_REQUEST).
   */
  request<R = unknown>(type: string, data: unknown, options?: KeyedRequestOptions): Promise<R> {
    const late = this.late();
    if (late) return late;
    const traceparent = this.event.traceparent;
    const trace = traceparent ? { traceparent } : {};
    const durable = options !== null && typeof options === 'object' ? options.durable : undefined;
    if (durable !== undefined && typeof durable !== 'boolean') return Promise.reject(misuse(`invalid ctx.request ${type} durable ${describe(durable)} in agent ${this.inst.agent}: expected true or false`));
    if (durable === true && !isKeyed(this.d)) {
      return Promise.reject(misuse(`ctx.request ${type} in agent ${this.inst.agent}: durable requests are for keyed agents only (declare static key)`));
    }
    // Inside a ctx.step's function a request is in memory (bus/keyed/context.ts): asked here, with the agent's source.
    const inStep = (this.d as { inStep?: boolean }).inStep === true;
    if (isKeyed(this.d) && !this.inst.replaying && (durable === true || (durable === undefined && !inStep))) return this.d.request<R>(type, data, { ...trace, ...options });
    const rest: KeyedRequestOptions = { ...options };
    delete rest.durable;
    return this.inst.request<R>(type, data, { source: this.inst.source, ...trace, ...rest });
  }
  /** Keyed agents only (bus/keyed/waits.ts); the timeout may be a duration string. */
  waitFor<T = unknown>(type: string, options: WaitOptions<T>): Promise<CloudEvent<T>> {
    if (!isKeyed(this.d)) {
      return Promise.reject(misuse(`ctx.waitFor in agent ${this.inst.agent}: waitFor is for keyed agents only (declare static key, and the type in static waitsFor)`));
    }
    return this.d.waitFor<T>(type, options);
  }
  /** Keyed agents only (bus/keyed/steps.ts); in a replay `fn` runs unrecorded (runtime/keyed.ts). */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    if (!isKeyed(this.d)) {
      return Promise.reject(misuse(`ctx.step in agent ${this.inst.agent}: step is for keyed agents only (declare static key)`));
    }
    return this.d.step<T>(name, fn);
  }

  /** Schedules and cancels of this handler, one after another in call order (a cancel must not overtake the schedule before it). */
  private timeOps: Promise<unknown> | null = null;
  private inOrder<T>(op: () => Promise<T>): Promise<T> {
    const r = (this.timeOps ?? SETTLED).then(op, op);
    this.timeOps = r.catch(() => undefined);
    return r;
  }
  schedule(type: string, data: unknown, options: ReminderOptions): Promise<string> {
    try {
      const o = reminderOptions(this.inst.agent, this.key, options);
      if (o.name === undefined) return this.publish(type, data, o);
      // The id is taken now, in call order, as any publish's: a redelivery derives the same.
      const k = this.keyedOptions(undefined);
      return this.inOrder(() => this.publish(type, data, { ...o, ...k }));
    } catch (err) {
      return Promise.reject(err);
    }
  }
  cancelSchedule(name: string): Promise<boolean> {
    try {
      const full = reminderName(this.inst.agent, this.key, name);
      if (this.inst.replaying) return Promise.resolve(false);
      const late = this.late();
      if (late) return late;
      const schedules = this.inst.bus.schedules;
      if (!schedules) throw invalid('INVALID_OPTION', `cancelSchedule ${JSON.stringify(name)}: this store has no delayed events`);
      // Keyed: the cancel's own id, derived from the delivery as a publish's: done once however often the handler runs.
      const k = this.keyedOptions(undefined);
      return this.inOrder(() => schedules.cancel(full, k));
    } catch (err) {
      return Promise.reject(err);
    }
  }
  publishBatch(events: EventInput[]): Promise<string[]> {
    const late = this.late();
    if (late) return late;
    if (!isKeyed(this.d) || this.inst.replaying || !Array.isArray(events)) return this.inst.publishBatch(events);
    return this.inst.publishBatch(events.map((e) => ({ ...e, ...this.keyedOptions(e) })));
  }
  setInterval(fn: () => unknown, ms: number): void { this.inst.setInterval(fn, ms); }
  setTimeout(fn: () => unknown, ms: number): void { this.inst.setTimeout(fn, ms); }
  crash(error: unknown): void { this.inst.crash(error); }
  exit(): void { this.inst.exit(); }
}
