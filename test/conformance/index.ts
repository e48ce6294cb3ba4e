import { pino } from 'pino';
import type { Bus } from '../../bus/contract.js';
import type { BusOptions } from '../../bus/contract.js';
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

/** What an adapter's test file hands the suite. */
export interface AdapterUnderTest {
  name: string;
  /** A bus on the adapter's store, with `options` applied. */
  create(options?: BusOptions): Promise<Bus>;
  features: Features;
}

export interface Features {
  /** Writes an entry the bus cannot decode to `topic`, straight into the store. */
  injectMalformed(topic: string): Promise<void>;
  /**
   * Writes `envelope` (JSON text, trusted by nobody) to `topic` straight into the store, as another
   * program would: on Redis an XADD with one `event` field, on SQLite a row of `events`.
   */
  injectEnvelope(topic: string, envelope: string): Promise<void>;
  /** Redis only: an XADD of these field/value pairs to `topic`'s stream (a foreign producer's own shape). */
  injectFields?(topic: string, fields: string[]): Promise<void>;
  /** Options for `createBus` in another process, on the same store; absent when the store is private (`:memory:`). */
  processOptions?: Record<string, unknown>;
  /** How many consumer records the store keeps for `group` on `topic` (live or not), to check dead ones are removed. */
  consumerRecords?(topic: string, group: string): Promise<number>;
}

export const quiet = pino({ level: 'silent' });

/** The one suite every adapter passes. Each scenario uses fresh topic and group names. */
export function conformance(a: AdapterUnderTest): void {
  const make = (o: BusOptions = {}) => a.create({ logger: quiet, ...o });
  const t = { ...a, make };
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
  if (a.features.processOptions) processSuite(t);
}

export type Target = AdapterUnderTest & { make(o?: BusOptions): Promise<Bus> };
