import { pino } from 'pino';
import { suite } from 'uvu';
import type { Bus, BusOptions, Subscription } from '../../bus/contract.js';
import type { StateStore } from '../../bus/state.js';
import { deliverySuite } from './delivery.js';
import { failureSuite } from './failures.js';
import { claimSuite } from './claims.js';
import { orderSuite } from './order.js';
import { lifecycleSuite } from './lifecycle.js';
import { historySuite } from './history.js';
import { inputSuite } from './input.js';
import { processSuite } from './processes.js';
import { foreignSuite } from './foreign.js';
import { statsSuite } from './stats.js';
import { discoverySuite } from './discovery.js';
import { keyedSuite } from './keyed.js';
import { timeSuite } from './time.js';
import { requestSuite } from './requests.js';
import { delayedSuite } from './delayed.js';
import { reminderSuite } from './reminders.js';
import { waitSuite } from './waits.js';
import { stepSuite } from './steps.js';
import { erasureSuite } from './erasure.js';
import { keyRecordSuite } from './key-records.js';
import { durableRequestSuite } from './durable-requests.js';

/** What an adapter's test file hands the suite. */
export interface AdapterUnderTest {
  name: string;
  /** A bus on the adapter's store, with `options` applied. */
  create(options?: BusOptions): Promise<Bus>;
  /** What the store can do beyond the contract; a scenario that needs a capability runs only where it is true. */
  features: Features;
  /** Ways into the store behind the bus' back, as another program or a damaged store would write. */
  store: StoreAccess;
}

/**
 * The adapter's capabilities, each a flag the suite reads (as Watermill's `tests.Features`). Every
 * flag that is true needs its hook in StoreAccess; conformance() refuses the adapter otherwise.
 */
export interface Features {
  /**
   * Other processes can open the same store at once (SQLite on a file, Redis; not SQLite `:memory:`,
   * private to its connection). Runs the several-processes scenarios and the cross-process topic
   * discovery, with `store.processOptions`.
   */
  sharedAcrossProcesses: boolean;
  /**
   * Other programs write entries in the store's own shape besides the envelope (Redis stream
   * field/value pairs, as a Python producer writes them). Runs the foreign-fields scenarios, with
   * `store.injectFields`.
   */
  foreignFieldEntries: boolean;
  /**
   * The store keeps one record per consumer of a group that the suite can count (Redis XINFO
   * CONSUMERS, the SQLite `consumers` table): checks a stopped consumer's record is removed, with
   * `store.consumerRecords`.
   */
  countsConsumers: boolean;
  /**
   * The suite can count what one bus asks its store about due delayed entries (Redis MONITOR on its
   * own prefix, SQLite statements on the `due` table through its connection): checks that a bus
   * costs its store nothing for them until it needs a mover, with `store.dueQueries`.
   */
  countsDueQueries: boolean;
}

export interface StoreAccess {
  /** Writes an entry the bus cannot decode to `topic`, straight into the store. */
  injectMalformed(topic: string): Promise<void>;
  /**
   * Writes `envelope` (JSON text, trusted by nobody) to `topic` straight into the store, as another
   * program would: on Redis an XADD with one `event` field, on SQLite a row of `events`.
   */
  injectEnvelope(topic: string, envelope: string): Promise<void>;
  /** With `foreignFieldEntries`: an XADD of these field/value pairs to `topic`'s stream (a foreign producer's own shape). */
  injectFields?(topic: string, fields: string[]): Promise<void>;
  /**
   * A second bus on the store of the bus `create` made last, for an adapter whose `create` makes a
   * new store each time (SQLite `:memory:`, private to its connection); without it, `create` is used.
   */
  sameStore?(options: BusOptions): Promise<Bus>;
  /** With `sharedAcrossProcesses`: options for `createBus` in another process, on the same store. */
  processOptions?: Record<string, unknown>;
  /**
   * The adapter's keyed-state store (bus/state.ts) on a store of its own kind, through a driver of
   * its own: for the store contract's behaviours the bus API cannot reach in a test, such as a wait
   * record's expiry (a day past its deadline). `close` closes the driver and its connection.
   */
  stateStore(): Promise<{ store: StateStore; close(): Promise<void> }>;
  /** With `countsConsumers`: how many consumer records the store keeps for `group` on `topic` (live or not). */
  consumerRecords?(topic: string, group: string): Promise<number>;
  /**
   * With `countsDueQueries`: a bus made with `options` (and the silent logger) and how many commands
   * or statements naming due entries (due sets, the due topics set, the `due` table) it has sent its
   * store since it was made; with `sharedAcrossProcesses`, `another()` makes a bus on the same store
   * (and Redis prefix), not counted. `close` closes them and the counting.
   */
  dueQueries?(options: BusOptions): Promise<{ bus: Bus; count(): Promise<number>; another?(): Promise<Bus>; close(): Promise<void> }>;
}

export const quiet = pino({ level: 'silent' });

/** The one suite every adapter passes. Each scenario uses fresh topic and group names. */
export function conformance(a: AdapterUnderTest): void {
  const needs: Array<[keyof Features, keyof StoreAccess]> = [
    ['sharedAcrossProcesses', 'processOptions'],
    ['foreignFieldEntries', 'injectFields'],
    ['countsConsumers', 'consumerRecords'],
    ['countsDueQueries', 'dueQueries'],
  ];
  for (const [flag, hook] of needs) {
    if (a.features[flag] && a.store[hook] === undefined) throw new Error(`${a.name}: features.${flag} needs store.${hook}`);
  }
  const t = target(a);
  deliverySuite(t);
  failureSuite(t);
  claimSuite(t);
  orderSuite(t);
  lifecycleSuite(t);
  historySuite(t);
  inputSuite(t);
  foreignSuite(t);
  statsSuite(t);
  discoverySuite(t);
  keyedSuite(t);
  timeSuite(t);
  requestSuite(t);
  delayedSuite(t);
  reminderSuite(t);
  waitSuite(t);
  stepSuite(t);
  durableRequestSuite(t);
  erasureSuite(t);
  keyRecordSuite(t);
  if (a.features.sharedAcrossProcesses) processSuite(t);
}

export type Target = AdapterUnderTest & {
  /**
   * A bus on the adapter's store (silent logger unless `o` gives one). It and every subscription made
   * on it are closed after the scenario, passed or failed; a scenario may still close them itself.
   */
  make(o?: BusOptions): Promise<Bus>;
  /** As make, a bus on the store of the bus made last (the same store anyway, except on SQLite :memory:). */
  another(o?: BusOptions): Promise<Bus>;
  /** A uvu suite titled `<adapter>: <title>` whose scenarios close what they made when they end. */
  scenarios(title: string): ReturnType<typeof suite>;
};

/** The adapter as scenarios use it: `make` and `scenarios` close what a scenario made when it ends. */
export function target(a: AdapterUnderTest): Target {
  const left = new Leftovers();
  return {
    ...a,
    make: async (o: BusOptions = {}) => left.bus(await a.create({ logger: quiet, ...o })),
    another: async (o: BusOptions = {}) => left.bus(await (a.store.sameStore ?? a.create)({ logger: quiet, ...o })),
    scenarios: (title) => {
      const test = suite(`${a.name}: ${title}`);
      test.after.each(() => left.close());
      return test;
    },
  };
}

/**
 * What the scenario running now has made. Subscriptions close first without draining (a handler
 * the failed assertion left waiting would hold a drain for drainTimeoutMs), then the buses. A close
 * that fails is ignored: the scenario's own failure is the one to report.
 */
class Leftovers {
  private buses: Bus[] = [];
  private subs: Subscription[] = [];

  /** `bus` as itself, except that `subscribe` also records the subscription. */
  bus(bus: Bus): Bus {
    this.buses.push(bus);
    const subscribe: Bus['subscribe'] = async (options, handler) => {
      const sub = await bus.subscribe(options, handler);
      this.subs.push(sub);
      return sub;
    };
    return new Proxy(bus, {
      get: (target, key) => {
        if (key === 'subscribe') return subscribe;
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }

  async close(): Promise<void> {
    const subs = this.subs.splice(0);
    const buses = this.buses.splice(0);
    await Promise.all(subs.map((s) => s.close({ drain: false }).catch(() => {})));
    await Promise.all(buses.map((b) => b.close().catch(() => {})));
  }
}
