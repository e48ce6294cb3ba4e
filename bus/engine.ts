import type { Logger } from 'pino';
import type { Bound, Bus, BusOptions, DeadLetter, DeadLetters, Handler, ReplayOptions, ReplayResult, RewindOptions, StoreHealth, SubscribeOptions, Subscription } from './contract.js';
import { MAX_TIME_MS, type AppendEntry, type Driver, type StoreBound } from './driver.js';
import { asTopic, checkPattern, checkType, createEvent, encodeEvent, expandTypes, PUBLISH_OPTION_KEYS, type EventInput, type PublishOptions } from './event.js';
import { BusClosedError, invalid } from './errors.js';
import { DEDUP_WINDOW_MS, resolveBusOptions, resolveSubscribeOptions } from './options.js';
import { int, knownKeys } from './validate.js';
import { defaultLogger } from './logger.js';
import { Consumer, describe, errForLog, stackOf } from './consumer.js';
import { HEALTH_EVERY_MS, PressureWatch } from './pressure.js';

/** Most entries one store round trip carries; a larger burst is split so no single write stalls for long. */
const MAX_APPEND = 5000;
const HOUSEKEEPING_MS = 10_000;

/** One publish or publishBatch call waiting for the next append; one promise per call, not per event. */
interface Queued {
  entries: AppendEntry[];
  /** publish() resolves with the id, publishBatch() with all ids. */
  one: boolean;
  resolve: (result: string | string[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Builds the Bus contract over a Driver. Publishes made in the same tick share one append; the
 * subscription runtime lives in consumer.ts. Adapters call this from their factory.
 */
export function busFromDriver(driver: Driver, options: BusOptions = {}): Bus {
  const o = resolveBusOptions(options);
  const log: Logger = options.logger ?? defaultLogger();
  const consumers = new Set<Consumer>();
  let queue: Queued[] = [];
  let flushing: Promise<void> | null = null;
  let closing: Promise<void> | null = null;
  /** Publishing closes after the subscriptions drained: a handler finishing its work may still publish. */
  let sealed = false;

  const housekeeping = setInterval(() => {
    driver.trim(o.retention, o.dedupWindowMs, false).catch((err) => log.error({ err: errForLog(err) }, 'store error during trim'));
  }, o.retention?.intervalMs ?? HOUSEKEEPING_MS);
  housekeeping.unref();

  // The store's health passes through one watch, which logs its warnings (rate-limited); a timer
  // reads it now and then so they are logged with nobody scraping. One reading at a time.
  const watch = new PressureWatch(log);
  let reading: Promise<StoreHealth> | null = null;
  const health = driver.health
    ? (options: { topics?: string[] | undefined } = {}) =>
        closing
          ? Promise.reject(new BusClosedError('health'))
          : driver.health!(options.topics ?? []).then((h) => {
              watch.observe(h);
              return h;
            })
    : undefined;
  const healthTimer = health
    ? setInterval(() => {
        reading ??= health().finally(() => (reading = null));
        reading.catch(() => {}); // store unreachable: ping and the consumers say so
      }, HEALTH_EVERY_MS)
    : undefined;
  healthTimer?.unref();

  function enqueue(entries: AppendEntry[], one: boolean): Promise<string | string[]> {
    return new Promise((resolve, reject) => {
      queue.push({ entries, one, resolve, reject });
      if (flushing === null) flushing = new Promise((r) => setImmediate(() => flush().then(r)));
    });
  }

  /** Appends queued calls in order, about MAX_APPEND events a round trip; a call is never split. */
  async function flush(): Promise<void> {
    while (queue.length > 0) {
      let n = 0;
      let take = 0;
      while (take < queue.length && (take === 0 || n + queue[take].entries.length <= MAX_APPEND)) n += queue[take++].entries.length;
      const batch = queue.slice(0, take);
      queue = queue.slice(take);
      try {
        await driver.append(batch.length === 1 ? batch[0].entries : batch.flatMap((q) => q.entries));
        if (patternSubscribers > 0) for (const q of batch) announce(q.entries);
        for (const q of batch) q.resolve(q.one ? q.entries[0].event.id : q.entries.map((e) => e.event.id));
      } catch (err) {
        for (const q of batch) q.reject(err);
      }
    }
    flushing = null;
  }

  /** Pattern subscriptions open on this bus; the topics this bus has published to since one was. */
  let patternSubscribers = 0;
  const published = new Set<string>();
  /** A pattern subscription hears at once of a topic this bus publishes to for the first time. */
  function announce(entries: AppendEntry[]): void {
    for (const e of entries) {
      if (published.has(e.topic)) continue;
      if (published.size >= 100_000) published.clear(); // bounded; a topic told twice is harmless
      published.add(e.topic);
      for (const c of consumers) c.topicPublished(e.topic);
    }
  }

  /** One event to store; `opts` were checked for unknown keys by the caller. */
  function entry(type: string, data: unknown, opts: PublishOptions | undefined): AppendEntry {
    checkType(type);
    const event = createEvent(type, data, opts, o.source);
    const body = driver.encode ? driver.encode(event, o.maxPayloadBytes) : encodeEvent(event, o.maxPayloadBytes);
    const window = opts?.dedupWindowMs === undefined ? o.dedupWindowMs : DEDUP_WINDOW_MS.resolve('dedupWindowMs', opts.dedupWindowMs);
    return { topic: type, event, body, dedup: opts?.id !== undefined, dedupWindowMs: window };
  }

  async function resolveTopics(types: string[]): Promise<string[]> {
    types.forEach(checkPattern);
    return expandTypes(types, types.some((t) => t.endsWith('*')) ? await driver.topics() : []);
  }

  /** A dead letter's event as it was delivered: typed by its topic (see asTopic). */
  const asDelivered = (dl: DeadLetter | null): DeadLetter | null => (dl?.event ? { ...dl, event: asTopic(dl.event, dl.type) } : dl);

  const deadLetters: DeadLetters = {
    list: async (filter = {}) => {
      if (filter === null || typeof filter !== 'object') throw invalid('INVALID_OPTION', `dead-letter list filter must be an object, got ${String(filter)}`);
      knownKeys('dead-letter list', filter, DL_FILTER_KEYS);
      if (filter.group !== undefined && (typeof filter.group !== 'string' || filter.group === '')) {
        throw invalid('INVALID_OPTION', `invalid group ${JSON.stringify(filter.group)}: expected a group name`);
      }
      if (filter.type !== undefined) checkType(filter.type);
      const dls = await driver.dlqList({ group: filter.group, type: filter.type, limit: int('limit', filter.limit, 100, 1, 100_000) });
      return dls.map((dl) => asDelivered(dl)!);
    },
    get: async (id) => asDelivered(await driver.dlqGet(String(id))),
    retry: (ids) => driver.dlqRetry(checkIds(ids)),
    purge: (ids) => driver.dlqPurge(checkIds(ids)),
  };

  const bus: Bus = {
    publish(type, data, opts) {
      if (sealed) return Promise.reject(new BusClosedError(`publish ${type}`));
      try {
        // Only a publish with options pays for checking them.
        if (opts !== undefined) checkPublishOptions(opts);
        return enqueue([entry(type, data, opts)], true) as Promise<string>;
      } catch (err) {
        return Promise.reject(err);
      }
    },

    publishBatch(events: EventInput[]) {
      if (sealed) return Promise.reject(new BusClosedError('publishBatch'));
      if (!Array.isArray(events)) return Promise.reject(invalid('INVALID_OPTION', `publishBatch expects an array, got ${typeof events}`));
      let entries: AppendEntry[];
      try {
        // Validate all before storing any: a bad entry stores nothing.
        entries = events.map((e, i) => {
          if (e === null || typeof e !== 'object') throw invalid('INVALID_OPTION', `publishBatch entry ${i} is not an object`);
          knownKeys(`publishBatch entry ${i}`, e, BATCH_ENTRY_KEYS);
          const { type, data, ...opts } = e;
          return entry(type, data, opts);
        });
      } catch (err) {
        return Promise.reject(err);
      }
      return enqueue(entries, false) as Promise<string[]>;
    },

    async subscribe<T>(options: SubscribeOptions, typed: Handler<T>): Promise<Subscription> {
      const handler = typed as Handler; // T is the caller's assertion about data, unchecked
      if (closing) throw new BusClosedError('subscribe');
      const so = resolveSubscribeOptions(options);
      if (typeof handler !== 'function') throw invalid('INVALID_OPTION', `subscribe handler must be a function, got ${typeof handler}`);
      const pattern = so.types.some((t) => t.endsWith('*'));
      const c = new Consumer(driver, so, o.maxPayloadBytes, handler, log, (x) => {
        if (consumers.delete(x) && pattern) patternSubscribers--;
      });
      consumers.add(c);
      if (pattern) patternSubscribers++;
      try {
        await c.start();
      } catch (err) {
        if (consumers.delete(c) && pattern) patternSubscribers--;
        await c.close({ drain: false });
        throw err;
      }
      return c;
    },

    async replay<T>(options: ReplayOptions, typed: Handler<T>): Promise<ReplayResult> {
      const handler = typed as Handler;
      if (closing) throw new BusClosedError('replay');
      if (options === null || typeof options !== 'object') throw invalid('INVALID_OPTION', `replay options must be an object, got ${String(options)}`);
      knownKeys('replay', options, REPLAY_KEYS);
      if (!Array.isArray(options.types) || options.types.length === 0) {
        throw invalid('INVALID_OPTION', `replay types ${JSON.stringify(options.types)}: expected a non-empty array of types or patterns`);
      }
      if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
        throw invalid('INVALID_OPTION', `invalid onProgress ${JSON.stringify(options.onProgress)}: expected a function`);
      }
      const from = options.from === undefined ? null : toStoreBound('from', options.from);
      const toOpt = options.to === undefined ? null : toStoreBound('to', options.to);
      const result: ReplayResult = { handled: 0, failed: [] };
      const signal = new AbortController().signal;
      for (const topic of await resolveTopics(options.types)) {
        const lastPos = await driver.last(topic);
        if (lastPos === null) continue;
        const to = toOpt ?? { position: lastPos };
        let after: string | null = null;
        for (;;) {
          const page = await driver.range(topic, { from, to, after, limit: 500, maxBytes: o.maxPayloadBytes });
          for (const d of page) {
            const fail = (error: string, stack?: string) =>
              result.failed.push({ type: topic, position: d.position, id: d.event?.id ?? '', error, ...(stack === undefined ? {} : { stack }) });
            if (d.event === null) {
              fail(`${d.oversize ? 'oversize' : 'malformed'}: ${d.malformed}`);
              continue;
            }
            const event = asTopic(d.event, topic);
            let reason: string | undefined;
            const ctx = { attempt: 1, position: d.position, group: '(replay)', consumer: '(replay)', signal, deadLetter: (r: string) => void (reason = r) };
            try {
              await handler(event, ctx);
              if (reason === undefined) result.handled++;
              else fail(`dead-lettered by handler: ${reason}`);
            } catch (err) {
              fail(describe(err), stackOf(err));
            }
          }
          options.onProgress?.(result.handled + result.failed.length);
          if (page.length < 500) break;
          after = page[page.length - 1].position;
        }
      }
      return result;
    },

    async rewind(options: RewindOptions): Promise<void> {
      if (closing) throw new BusClosedError('rewind');
      if (typeof options?.group !== 'string' || options.group === '') throw invalid('INVALID_OPTION', `rewind group ${JSON.stringify(options?.group)}: expected a group name`);
      checkType(options.type);
      await driver.seek(options.group, options.type, options.from === 'earliest' ? 'earliest' : toStoreBound('from', options.from));
    },

    deadLetters,
    stats: () => driver.stats(),
    ping: () => (closing ? Promise.reject(new BusClosedError('ping')) : driver.ping()),
    trim: () => driver.trim(o.retention, o.dedupWindowMs, true),
    ...(health ? { health } : {}),

    close() {
      closing ??= (async () => {
        clearInterval(housekeeping);
        clearInterval(healthTimer);
        await Promise.all([...consumers].map((c) => c.close()));
        sealed = true;
        if (flushing) await flushing;
        await driver.close();
      })();
      return closing;
    },
  };
  return bus;
}

/**
 * A bound given by a user: a Date or epoch ms is a time; a string of digits (SQLite) or
 * `<ms>-<seq>` (Redis) is a position (its range is checked by the driver); any other string must
 * parse as an ISO-8601 time. Times must lie within a Date's range (up to MAX_TIME_MS).
 */
export function toStoreBound(name: string, b: Bound): StoreBound {
  if (b instanceof Date) {
    if (Number.isNaN(b.getTime())) throw invalid('INVALID_OPTION', `invalid ${name}: an Invalid Date`);
    return { time: b.getTime() };
  }
  if (typeof b === 'number') {
    if (!Number.isInteger(b) || b < 0 || b > MAX_TIME_MS) {
      throw invalid('INVALID_OPTION', `invalid ${name} ${b}: expected epoch milliseconds (an integer from 0 to ${MAX_TIME_MS})`);
    }
    return { time: b };
  }
  if (typeof b === 'string') {
    if (/^\d+(-\d+)?$/.test(b)) return { position: b };
    const t = Date.parse(b);
    if (!Number.isNaN(t)) return { time: t };
  }
  throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(b)}: expected a Date, epoch milliseconds, an ISO-8601 time or a position`);
}

const BATCH_ENTRY_KEYS = ['type', 'data', ...PUBLISH_OPTION_KEYS];
const REPLAY_KEYS = ['types', 'from', 'to', 'onProgress'];
const DL_FILTER_KEYS = ['group', 'type', 'limit'];

/** Publish options must be an object of known keys (a misspelt `subjet` is refused, not dropped). */
function checkPublishOptions(opts: unknown): void {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw invalid('INVALID_OPTION', `publish options must be an object, got ${String(opts)}`);
  knownKeys('publish', opts, PUBLISH_OPTION_KEYS);
}

function checkIds(ids: unknown): string[] {
  if (!Array.isArray(ids) || ids.some((i) => typeof i !== 'string' || i === '')) {
    throw invalid('INVALID_OPTION', `invalid dead letter ids ${JSON.stringify(ids)}: expected an array of id strings`);
  }
  return ids;
}
