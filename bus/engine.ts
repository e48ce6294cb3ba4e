// busFromDriver: the Bus contract assembled over a Driver from its parts — publishing (publish.ts),
// subscriptions (subscriptions.ts, consumer.ts), replay (replay.ts), dead letters (dead-letters.ts), bounds
// (bounds.ts) — plus the bus' own timers (retention, store health). Adapters call it from their factory.
import type { Logger } from 'pino';
import type { Bus, Handler, StoreHealth, TopicStats } from './contract.js';
import type { AppendEntry, AppendHas, Driver } from './driver.js';
import { appendHas, HAS_DUE } from './delivery.js';
import { checkType, REPLY_PREFIX, type CloudEvent } from './event.js';
import { BusClosedError, invalid } from './errors.js';
import { resolveBusOptions, type ResolvedBusOptions } from './options.js';
import type { BusOptions, SubscribeOptions } from './contract.js';
import { defaultLogger } from './logger.js';
import { Subscriptions } from './subscriptions.js';
import { keyedStates } from './keyed/states.js';
import { Publisher } from './publish.js';
import { failureReply, Requests, replyOptions, type RequestFailure, type RequestLink } from './requests.js';
import type { RequestOutcome } from './contract-observer.js';
import { replay } from './replay.js';
import { deadLettersOf } from './dead-letters.js';
import { toStoreBound } from './bounds.js';
import { HEALTH_EVERY_MS, PressureWatch } from './pressure.js';
import { errForLog } from './thrown.js';
import { DueMover } from './due.js';
import type { BusSpool } from './spool.js';
import { BusObservers } from './observers.js';
import { schedulesOf } from './schedules.js';
import { settlesBy, StoreSilence } from './closing.js';
import { ReplySweeper } from './replies.js';
import { UnreadRequestTypes } from './unread-requests.js';

const HOUSEKEEPING_MS = 10_000;

/** `spool`: where appends go first (the Redis `spool` option); the bus starts its forwarder and closes it. */
export function busFromDriver(driver: Driver, options: BusOptions = {}, spool: BusSpool | null = null): Bus {
  const o = resolveBusOptions(options);
  const log: Logger = options.logger ?? defaultLogger();
  // Once a close gave up on the store, the closes after it wait for it only if it answers a ping.
  const silence = new StoreSilence(() => driver.admin.ping());
  const reply = (req: CloudEvent, group: string, value: unknown, failure?: RequestFailure) => {
    if (failure === undefined) return publisher.publish(req.replyto!, value ?? null, replyOptions(req, group, o.source));
    const f = failureReply(req, group, o.source, failure, o.maxPayloadBytes);
    return publisher.publish(req.replyto!, f.data, f.options);
  };
  const observers = new BusObservers(log);
  const unread = new UnreadRequestTypes(driver, log, () => closing !== null);
  const tell = {
    sent: (type: string) => (unread.sent(type), observers.tell('requestSent', type)),
    ended: (r: RequestOutcome) => observers.tell('requestEnded', r),
    dropped: () => observers.tell('replyDropped'),
  };
  // Keyed subscriptions' durable requests (keyed/requests.ts) publish through this bus and tell its observers.
  const link: RequestLink = { publish: (t, d, p) => publisher.publish(t, d, p), request: (t, d, p) => requests.request(t, d, p), tell };
  const subs = new Subscriptions(driver, o.maxPayloadBytes, log, reply, silence, link);
  // A bus moves due delayed events (whoever published them) once it subscribed or published one
  // (bus/due.ts); a publish of its own wakes it. `moveDue: false`: never.
  const mover = driver.due && o.moveDue ? new DueMover(driver.due, log, (moved) => observers.tell('dueMoved', moved)) : null;
  const stored = (entries: AppendEntry[], has: AppendHas = appendHas(entries)) => {
    subs.stored(entries);
    if (mover && has & HAS_DUE) for (const e of entries) if (e.dueAt !== undefined) mover.stored(e.dueAt);
  };
  /** Subscribing starts the mover: this bus' consumers must see what other processes delayed. */
  const subscribe = (so: SubscribeOptions, h: Handler) => {
    mover?.start();
    return subs.subscribe(so, h);
  };
  const publisher = new Publisher(driver, o, stored, spool);
  spool?.start(stored);
  const requests = new Requests({ publish: (t, d, p) => publisher.publish(t, d, p), subscribe: (so, h) => subscribe(so, h as Handler) }, tell);
  const sweeper = new ReplySweeper(driver, requests.topic, o.replyTopicIdleMs, log);
  const timers = startTimers(driver, o, log, () => closing !== null, sweeper);
  let closing: Promise<void> | null = null;
  const open = (what: string) => {
    if (closing) throw new BusClosedError(what);
  };

  return {
    publish: (type, data, opts) => publisher.publish(type, data, opts),
    publishBatch: (events) => publisher.publishBatch(events),
    publishDetailed: (type, data, opts) => publisher.publishDetailed(type, data, opts),
    publishBatchDetailed: (events) => publisher.publishBatchDetailed(events),
    ...(spool ? { spool: { stats: () => spool.stats() } } : {}),
    request: (type, data, opts) => requests.request(type, data, opts),

    async subscribe(options, handler) {
      open('subscribe');
      return subscribe(options, handler as Handler);
    },

    async replay(options, handler) {
      open('replay');
      return replay(driver, o.maxPayloadBytes, options, handler as Handler);
    },

    async rewind(options) {
      open('rewind');
      if (typeof options?.group !== 'string' || options.group === '') throw invalid('INVALID_OPTION', `rewind group ${JSON.stringify(options?.group)}: expected a group name`);
      checkType(options.type);
      // A reply topic's replies were each handed to their request once (a keyed group's recorded into its durable request's record): again, they are dropped.
      if (options.type.startsWith(REPLY_PREFIX)) throw invalid('INVALID_OPTION', `rewind of group ${options.group} onto ${options.type} refused: it is a reply topic, whose replies were handed to their requests once; delivered again they are dropped (rewind the group on the types its handlers take)`);
      await driver.groups.seek(options.group, options.type, options.from === 'earliest' ? 'earliest' : toStoreBound('from', options.from));
    },

    deadLetters: deadLettersOf(driver),
    ...(driver.state ? { keys: keyedStates(driver.state) } : {}),
    ...(driver.due ? { schedules: schedulesOf(driver.due, o) } : {}),
    stats: () => stats(driver),
    ping: () => (closing ? Promise.reject(new BusClosedError('ping')) : driver.admin.ping()),
    trim: () => housekeepAndTrim(driver, o.retention, true, sweeper),
    ...(timers.health ? { health: timers.health } : {}),
    observe: (observer) => observers.add(observer),

    close() {
      closing ??= (async () => {
        timers.stop();
        requests.close();
        await subs.closeAll();
        // What is left waits CLOSE_STORE_MS at most whatever the store does (see closing.ts); not at
        // all when a close gave up on the store and it does not answer a ping now (StoreSilence).
        const by = Date.now() + (await silence.budget());
        const notDone: string[] = [];
        const wait = async (what: string, p: Promise<unknown> | undefined) => void (p && !(await settlesBy(p, by)) && notDone.push(what));
        const moved = wait('end the delayed-event move in flight (moved or still due, never half)', mover?.stop());
        await wait('store the publishes in flight (they fail as the connection closes, and may still have been stored: a retry without an id can store one twice)', publisher.seal()); // after the drain: a handler finishing its work may still publish
        // Stopping the forwarder; the spool file closes once a forward in flight ends (its events stay in the spool, forwarded by the next bus).
        await wait('end the spool forward in flight (its events stay in the spool)', spool?.close());
        // The reply topic only this bus read (its subscription closed above); left behind, any bus sweeps it later.
        if (requests.opened) await wait(`remove reply topic ${requests.topic} (another bus sweeps it later)`, driver.admin.dropTopic(requests.topic));
        await moved;
        if (notDone.length > 0) {
          log.warn({ notDone }, `bus closing without waiting for the store (it did not answer): not done: ${notDone.join('; ')}`);
        }
        await driver.close();
      })();
      return closing;
    },
  };
}

/** The driver's stats, with each topic's due delayed events where the store has them. */
async function stats(driver: Driver): Promise<TopicStats[]> {
  if (!driver.due) return driver.admin.stats();
  const [topics, due] = await Promise.all([driver.admin.stats(), driver.due.counts()]);
  for (const t of topics) t.due = due.get(t.type) ?? 0;
  return topics;
}

/**
 * bus.trim() (`exact`) and the housekeeping timer: what expired is removed (reply topics whose bus is
 * gone included, bus/replies.ts), then retention applied.
 * The timer skips trim without retention; bus.trim() never does (a read-only store refuses it).
 */
async function housekeepAndTrim(driver: Driver, retention: ResolvedBusOptions['retention'], exact: boolean, replies: ReplySweeper): Promise<number> {
  await driver.admin.housekeep?.();
  if (exact) await replies.sweep();
  else await replies.sweepQuietly();
  return retention === null && !exact ? 0 : driver.admin.trim(retention, exact);
}

/**
 * The bus' own timers: retention (approximate trims) and, where the driver has it, a reading of the
 * store's health now and then so its warnings are logged with nobody scraping. Every reading passes
 * through one PressureWatch, which logs (rate-limited); one timer reading at a time.
 */
function startTimers(driver: Driver, o: ResolvedBusOptions, log: Logger, closed: () => boolean, replies: ReplySweeper) {
  const housekeeping = setInterval(() => {
    housekeepAndTrim(driver, o.retention, false, replies).catch((err) => log.error({ err: errForLog(err) }, 'store error during trim'));
  }, o.retention?.intervalMs ?? HOUSEKEEPING_MS);
  housekeeping.unref();
  const watch = new PressureWatch(log);
  const health = driver.admin.health
    ? (options: { topics?: string[] | undefined } = {}): Promise<StoreHealth> =>
        closed()
          ? Promise.reject(new BusClosedError('health'))
          : driver.admin.health!(options.topics ?? []).then((h) => {
              watch.observe(h);
              return h;
            })
    : undefined;
  let reading: Promise<StoreHealth> | null = null;
  const healthTimer = health
    ? setInterval(() => {
        reading ??= health().finally(() => (reading = null));
        reading.catch(() => {}); // store unreachable: ping and the consumers say so
      }, HEALTH_EVERY_MS)
    : undefined;
  healthTimer?.unref();
  return {
    health,
    stop: () => {
      clearInterval(housekeeping);
      clearInterval(healthTimer);
    },
  };
}
