/**
 * A Redis bus with a spool that started while Redis was unreachable (connection refused, no answer
 * within connectTimeoutMs): the bus exists at once, publishes are spooled, and the checks a bus
 * runs at start (health.ts: eviction policy, version, replica...) run when Redis first answers,
 * before anything reaches it. Until they passed:
 *
 * - appends (publishes, the spool's forwards) fail over to the spool without trying Redis (an
 *   unreachable CONNECTION_FAILED); once a check refused the server, with that refusal (the spool
 *   keeps its events, as for a refused eviction policy after a reconnect), the checks running again
 *   on each reconnect and at most once a second when an append asks;
 * - `subscribe` resolves at once; its consumer starts once they passed, before the spool is
 *   forwarded (pending-subscription.ts);
 * - every other operation that needs Redis (replay, rewind, stats, ping, health, trim, dead
 *   letters, keys, schedules, a request's reply subscription) rejects at once with
 *   CONNECTION_FAILED naming the target, and sends nothing to Redis;
 * - the bus' own timers idle: the due mover moves nothing, the housekeeping trim trims nothing,
 *   and a consumer that never started forgets nothing.
 *
 * Waiting costs no CPU: ioredis reconnects (at most every 2 s), the spool's forwarder backs off to
 * 5 s, the mover polls a flag. A connection that Redis refuses (WRONGPASS, NOAUTH) is logged as an
 * error once per distinct reason; the spool keeps everything meanwhile.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus, Handler } from '../../bus/contract.js';
import type { Driver } from '../../bus/driver.js';
import { AgentbusError, ConnectionError } from '../../bus/errors.js';
import { errForLog } from '../../bus/thrown.js';
import { startChecks } from './health.js';
import { PendingSubscription } from './pending-subscription.js';
import { isUnreachable } from './spool/unreachable.js';

/** While refused, an append runs the checks again at most this often. */
const RECHECK_MS = 1000;
/** Longest wait for the pending subscriptions to start before the spool is forwarded anyway. */
const SUBSCRIBE_WAIT_MS = 10_000;

type Methods = Record<string, (...args: unknown[]) => Promise<unknown>>;

/** The driver's methods that reach Redis, per part (the sync ones, encode, wake, comparePositions, are left alone). */
const GATED: Record<string, string[]> = {
  log: ['range', 'last', 'topics', 'registered'],
  groups: ['create', 'seek', 'heartbeat', 'idleFor'],
  reads: ['read'],
  leases: ['ack', 'renew', 'release', 'countAttempt'],
  deadLetters: ['add', 'list', 'get', 'retry', 'purge'],
  admin: ['stats', 'ping', 'health', 'housekeep', 'dropTopic'],
  state: ['own', 'disown', 'takeOver', 'load', 'commit', 'get', 'list', 'remove', 'groups', 'openWait', 'matchWait', 'removeWaits'],
  due: ['counts', 'cancel', 'list', 'remove'],
};

export interface StartGateOptions {
  /** The command connection (reconnecting by itself) whose 'ready' runs the checks. */
  client: Redis;
  /** The target as logs name it (no password). */
  where: string;
  /** Checks the connection answers and the database was selected (index.ts' connect steps). */
  reach: () => Promise<void>;
  allowEvictionPolicy: boolean;
  log: Logger;
  /** Scrubs passwords from a message. */
  scrub: (s: string) => string;
  /** Why the start failed: the cause of the CONNECTION_FAILED every gated call rejects with. */
  cause: Error;
}

export class StartGate {
  private state: 'pending' | 'refused' | 'open' = 'pending';
  private refusal: Error | null = null;
  /** Appends go to Redis: set once the checks passed and the subscriptions made meanwhile started. */
  private admitted = false;
  private checking: Promise<void> | null = null;
  private checkedAt = 0;
  private closed = false;
  private readonly pending = new Set<PendingSubscription>();
  private readonly settled: Array<() => void> = [];
  private lastRefusedConnection = '';
  private readonly onReady = () => void this.check();
  private readonly onError = (err: Error) => {
    if (this.state === 'open' || isUnreachable(err)) return;
    const what = this.o.scrub(err.message);
    if (what === this.lastRefusedConnection) return;
    this.lastRefusedConnection = what;
    this.o.log.error({ redis: this.o.where, err: what }, `Redis at ${this.o.where} refuses the connection (${what}): publishes stay spooled; fix the bus' options and restart it`);
  };

  constructor(private readonly o: StartGateOptions) {
    o.client.on('ready', this.onReady);
    o.client.on('error', this.onError);
  }

  /** The start checks passed: the bus is as one started with Redis up. */
  get open(): boolean {
    return this.state === 'open';
  }

  /** Called when the checks first refused the server, and when they passed: the spool tries again then. */
  onSettled(fn: () => void): void {
    this.settled.push(fn);
  }

  /**
   * `driver` with its Redis calls gated: appends throw (unreachable: spooled) until the checks
   * passed; the others reject with CONNECTION_FAILED; the due mover and the housekeeping trim idle.
   */
  guard<D extends Driver>(driver: D): D {
    const parts = driver as unknown as Record<string, Methods | undefined>;
    for (const [part, names] of Object.entries(GATED)) {
      const target = parts[part];
      if (!target) continue;
      for (const name of names) {
        const fn = target[name];
        if (typeof fn !== 'function') continue;
        target[name] = (...args: unknown[]) => (this.open ? fn.apply(target, args) : Promise.reject(this.error(`${part}.${name}`)));
      }
    }
    const append = driver.log.append.bind(driver.log);
    driver.log.append = async (entries, has) => {
      if (!this.admitted) await this.admit();
      return append(entries, has);
    };
    if (driver.due) {
      const move = driver.due.move.bind(driver.due);
      driver.due.move = (now, max) => (this.open ? move(now, max) : Promise.resolve({ moved: 0, next: null, entries: [] }));
    }
    // A consumer that never started (a request's reply subscription) has nothing in Redis to forget.
    const forget = driver.groups.forget.bind(driver.groups);
    driver.groups.forget = (group, consumer, topics) => (this.open ? forget(group, consumer, topics) : Promise.resolve());
    const trim = driver.admin.trim.bind(driver.admin);
    driver.admin.trim = (retention, exact) => (this.open ? trim(retention, exact) : exact ? Promise.reject(this.error('trim')) : Promise.resolve(0));
    const close = driver.close.bind(driver);
    driver.close = async () => {
      this.stop();
      return close();
    };
    return driver;
  }

  /** `bus` with subscribe resolving at once until the checks passed (its consumer starts then). */
  wrap(bus: Bus): Bus {
    return {
      ...bus,
      subscribe: async (options, handler) => {
        if (this.open || this.closed) return bus.subscribe(options, handler);
        const sub = new PendingSubscription(bus, options, handler as Handler, this.o.log);
        this.pending.add(sub);
        return sub;
      },
      close: () => {
        this.stop();
        for (const s of this.pending) s.cancel();
        return bus.close();
      },
    };
  }

  /** Runs the checks now (the first 'ready' may have come before the gate listened). */
  start(): void {
    if (this.o.client.status === 'ready') void this.check();
  }

  private stop(): void {
    if (this.closed) return;
    this.closed = true;
    this.o.client.off('ready', this.onReady);
    this.o.client.off('error', this.onError);
  }

  /** What a gated call rejects with: unreachable while pending, the refusal once refused. */
  private error(what: string): Error {
    if (this.state === 'refused' && this.refusal) return this.refusal;
    return new ConnectionError(
      'CONNECTION_FAILED',
      `${what}: Redis at ${this.o.where} has not answered since the bus started (${this.o.cause.message}); publishes are spooled meanwhile, this needs Redis: try again once it is back`,
      { cause: this.o.cause },
    );
  }

  /** An append before the checks passed: refused ones run again (at most once a second), then it throws what stands. */
  private async admit(): Promise<void> {
    if (this.state === 'refused' && Date.now() - this.checkedAt >= RECHECK_MS) await this.check();
    if (!this.admitted) throw this.error('publish');
  }

  private check(): Promise<void> {
    if (this.open || this.closed) return Promise.resolve();
    this.checking ??= this.run().finally(() => {
      this.checking = null;
      this.checkedAt = Date.now();
    });
    return this.checking;
  }

  private async run(): Promise<void> {
    const first = this.state === 'pending';
    try {
      await this.o.reach();
      // The findings are logged the first time; checks run again while refused log only a change.
      await startChecks(this.o.client, this.o.allowEvictionPolicy, this.state === 'refused' ? this.o.log.child({}, { level: 'silent' }) : this.o.log);
    } catch (err) {
      if (isUnreachable(err) || isUnreachable((err as Error)?.cause)) {
        this.o.log.debug({ redis: this.o.where, err: errForLog(err) }, 'redis start checks: connection lost again, run on the next reconnect');
        return;
      }
      const e = err instanceof AgentbusError ? err : new ConnectionError('CONNECTION_FAILED', this.o.scrub(String((err as Error)?.message ?? err)));
      if (this.state !== 'refused' || this.refusal?.message !== e.message) {
        this.o.log.error({ redis: this.o.where, err: errForLog(e) }, `Redis at ${this.o.where} answered but failed the start checks: nothing is forwarded to it, publishes are refused or spooled behind their topic, the checks run again on each reconnect and publish (${e.message})`);
      }
      this.state = 'refused';
      this.refusal = e;
      if (first) for (const fn of this.settled) fn();
      return;
    }
    this.state = 'open';
    this.refusal = null;
    this.o.log.info({ redis: this.o.where }, `Redis at ${this.o.where} answered and passed the start checks: forwarding the spool`);
    // Subscriptions made meanwhile start first: the events spooled meanwhile reach them.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([...this.pending].map((s) => s.start())), new Promise((r) => (timer = setTimeout(r, SUBSCRIBE_WAIT_MS)))]);
    clearTimeout(timer);
    this.admitted = true;
    for (const fn of this.settled) fn();
    this.o.client.off('ready', this.onReady);
    this.o.client.off('error', this.onError);
  }
}
