import type { Bus } from '../bus/contract.js';
import { invalid, ReplayRequestError } from '../bus/errors.js';
import type { RequestOptions } from '../bus/contract-options.js';
import { checkType, createEvent, encodeEvent, PUBLISH_OPTION_KEYS, type EventInput, type PublishOptions } from '../bus/event.js';
import { dueTime } from '../bus/due.js';
import { knownKeys } from '../bus/validate.js';

/** How many of a replay's publishes its result lists (all are counted). */
export const REPLAY_PUBLISHED_KEPT = 100;
/** The largest maxPayloadBytes a bus takes: a captured event is refused only where every bus would refuse it. */
const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/** One event an agent published during a replay, as the result lists it. */
export interface ReplayPublished {
  type: string;
  /** The id it was stored under (`publish: true`), or would have been (its own `id` option, else a fresh one). */
  id: string;
  subject?: string;
  data: unknown;
  /** true: a request (ctx.request, ctx.bus.request), captured and not sent: the call rejected with ReplayRequestError. */
  request?: true;
}

/** What the agent published during a replay: counted, the first REPLAY_PUBLISHED_KEPT listed. */
export interface ReplayPublishing {
  count: number;
  /** true with `publish: true` (sent to the bus and stored); false by default (captured, nothing stored). */
  stored: boolean;
  events: ReplayPublished[];
}

/**
 * The publishes of an agent being replayed. With `stored` false (the default of a replay) nothing
 * reaches the bus: each publish is checked as the bus checks it (type, options, JSON-serializable
 * data), so code that fails live fails here too, then counted and the first ones kept. With `stored`
 * true they go to the bus and are counted once stored.
 */
export class ReplayCapture {
  readonly result: ReplayPublishing;

  constructor(stored: boolean) {
    this.result = { count: 0, stored, events: [] };
  }

  get stored(): boolean {
    return this.result.stored;
  }

  /** Records a publish that was stored (or, captured, would have been). */
  note(type: string, id: string, data: unknown, subject: string | undefined, request = false): void {
    this.result.count++;
    if (this.result.events.length < REPLAY_PUBLISHED_KEPT) this.result.events.push({ type, id, ...(subject === undefined ? {} : { subject }), data, ...(request ? { request: true as const } : {}) });
  }

  /**
   * A captured request: checked and noted as a publish (`request: true`), never sent (no replier
   * runs, a model or tool call costing money), so it has no reply: rejects with ReplayRequestError.
   */
  request(type: string, data: unknown, options: RequestOptions | undefined, source: string): Promise<never> {
    try {
      if (options !== undefined && (options === null || typeof options !== 'object')) throw invalid('INVALID_OPTION', `request options must be an object, got ${String(options)}`);
      const { timeoutMs: _t, ...publish } = (options ?? {}) as RequestOptions & { durable?: unknown };
      delete publish.durable;
      const e = this.check(type, data, publish, source);
      this.note(type, e.id, e.data, e.subject, true);
      return Promise.reject(new ReplayRequestError(`request ${type} not sent during a replay (listed with what the replay would have published): pass --publish (host.replay publish: true) to send it, or skip it when ctx.replaying`));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** A captured publish: validated, noted, never stored. Resolves with the id it would have had. */
  publish(type: string, data: unknown, options: PublishOptions | undefined, source: string): Promise<string> {
    try {
      if (options !== undefined) {
        if (options === null || typeof options !== 'object') throw invalid('INVALID_OPTION', `publish options must be an object, got ${String(options)}`);
        knownKeys('publish', options, PUBLISH_OPTION_KEYS);
      }
      const e = this.check(type, data, options, source);
      this.note(type, e.id, e.data, e.subject);
      return Promise.resolve(e.id);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** A captured publishBatch: all entries validated before any is noted, as the bus does. */
  publishBatch(events: EventInput[], source: string): Promise<string[]> {
    try {
      if (!Array.isArray(events)) throw invalid('INVALID_OPTION', `publishBatch expects an array, got ${typeof events}`);
      const made = events.map((e, i) => {
        if (e === null || typeof e !== 'object') throw invalid('INVALID_OPTION', `publishBatch entry ${i} is not an object`);
        const { type, data, ...opts } = e;
        knownKeys(`publishBatch entry ${i}`, opts, PUBLISH_OPTION_KEYS);
        return this.check(type, data, opts, source);
      });
      for (const e of made) this.note(e.type, e.id, e.data, e.subject);
      return Promise.resolve(made.map((e) => e.id));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The envelope the bus would store; its data as stored (a later change by the agent is not seen). */
  private check(type: string, data: unknown, options: PublishOptions | undefined, source: string) {
    checkType(type);
    if (options !== undefined) dueTime(options.delay, options.at, Date.now()); // refused as the bus refuses it
    const e = createEvent(type, data, options, source);
    return { ...e, data: JSON.parse(encodeEvent(e, MAX_PAYLOAD_BYTES)).data as unknown };
  }

  /** Notes the events of a publish or publishBatch sent to the bus, once stored. */
  sent(events: EventInput[], ids: Promise<string[]>): void {
    ids.then((got) => events.forEach((e, i) => this.note(e.type, got[i], e.data, e.subject)), () => {});
  }

  /**
   * `bus` as a replayed agent sees it through ctx.bus: its publish and publishBatch are captured
   * too (source: the option given, else `source`), or noted when sent, and so is its request
   * (captured, not sent: see request()); everything else is the bus itself.
   */
  wrap(bus: Bus, source: string): Bus {
    const publish = (type: string, data: unknown, options?: PublishOptions): Promise<string> => {
      if (!this.stored) return this.publish(type, data, options, source);
      const p = bus.publish(type, data, options);
      this.sent([{ type, data, ...options }], p.then((id) => [id]));
      return p;
    };
    const publishBatch = (events: EventInput[]): Promise<string[]> => {
      if (!this.stored) return this.publishBatch(events, source);
      const p = bus.publishBatch(events);
      this.sent(events, p);
      return p;
    };
    // The detailed variants take the same path (captured events are never spooled).
    const publishDetailed = (type: string, data: unknown, options?: PublishOptions) =>
      this.stored ? bus.publishDetailed(type, data, options).then((r) => (this.sent([{ type, data, ...options }], Promise.resolve([r.id])), r)) : publish(type, data, options).then((id) => ({ id, spooled: false }));
    const publishBatchDetailed = (events: EventInput[]) =>
      this.stored ? bus.publishBatchDetailed(events).then((rs) => (this.sent(events, Promise.resolve(rs.map((r) => r.id))), rs)) : publishBatch(events).then((ids) => ids.map((id) => ({ id, spooled: false })));
    const request = <R>(type: string, data: unknown, options?: RequestOptions): Promise<R> => (this.stored ? bus.request<R>(type, data, options) : this.request(type, data, options, source));
    return new Proxy(bus, {
      get: (target, key) => {
        if (key === 'publish') return publish;
        if (key === 'request') return request;
        if (key === 'publishBatch') return publishBatch;
        if (key === 'publishDetailed') return publishDetailed;
        if (key === 'publishBatchDetailed') return publishBatchDetailed;
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }
}
