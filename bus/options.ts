/**
 * The option tables: each option set (bus, retention, backoff, delivery, subscribe) declared once,
 * as a table from which come its known keys (in table order, as errors list them), each option's
 * validator with its range and default, and the default its doc comment states (`@default` in
 * bus/contract-options.ts, checked against `doc` here by test/structure.test.ts).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { BackoffOptions, BusOptions, DeliveryOptions, RetentionOptions, SubscribeOptions } from './contract.js';
import { invalid } from './errors.js';
import { checkPattern, defaultSource } from './event.js';
import { fn, int, knownKeys, num, oneOf, str, type OptionSpec } from './validate.js';
import { KEYED_OPTIONS } from './keyed/options.js';

export type { OptionSpec } from './validate.js';

type Table = Record<string, OptionSpec<unknown>>;
/** What a table resolves to: each key's checked value. */
export type Resolved<T extends Table> = { [K in keyof T]: T[K] extends OptionSpec<infer V> ? V : never };

/** An integer from `min` to `max`. */
export function intOption(dflt: number, min: number, max: number, doc = String(dflt)): OptionSpec<number> & { min: number; max: number } {
  return { resolve: (name, v) => int(name, v, dflt, min, max), doc, min, max };
}

function oneOfOption<T extends string>(values: readonly T[]): OptionSpec<T> {
  return { resolve: (name, v) => oneOf(name, v, values), doc: values[0] };
}

/** Checks `o`'s keys against the table, then resolves every option of it; `prefix` goes before each name in errors. */
export function resolveTable<T extends Table>(what: string, table: T, o: object, prefix = ''): Resolved<T> {
  knownKeys(what, o, Object.keys(table));
  const given = o as Record<string, unknown>;
  return Object.fromEntries(Object.entries(table).map(([k, spec]) => [k, spec.resolve(prefix + k, given[k])])) as Resolved<T>;
}

const MiB = 1024 * 1024;
const DAY_MS = 86_400_000;

/** The dedup window, the bus' default and a publish's own (`PublishOptions.dedupWindowMs`): up to a year. */
export const DEDUP_WINDOW_MS = intOption(3_600_000, 0, 365 * DAY_MS, '1 hour');

export const RETENTION_OPTIONS = {
  // No default of their own: without either, there is no retention (BUS_OPTIONS.retention).
  maxLen: { ...intOption(Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER), doc: undefined },
  maxAgeMs: { ...intOption(Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER), doc: undefined },
  intervalMs: intOption(1000, 10, 3_600_000, '1000 ms'),
} satisfies { [K in keyof Required<RetentionOptions>]: OptionSpec<unknown> };

export const BUS_OPTIONS = {
  source: { resolve: (name, v) => str(name, v, defaultSource), doc: '`/agentbus/<hostname>`' } as OptionSpec<string>,
  maxPayloadBytes: intOption(MiB, 64, 64 * MiB, '1 MiB (1048576)'),
  dedupWindowMs: DEDUP_WINDOW_MS,
  retention: {
    // null (keep everything) unless a limit is set; the values are checked only then.
    resolve: (_name, v) => {
      if (v === undefined) return null;
      const r = v as RetentionOptions;
      knownKeys('retention', r, Object.keys(RETENTION_OPTIONS));
      return r.maxLen === undefined && r.maxAgeMs === undefined ? null : resolveTable('retention', RETENTION_OPTIONS, r, 'retention.');
    },
    doc: 'keep everything',
  } as OptionSpec<Resolved<typeof RETENTION_OPTIONS> | null>,
  // Taken as given; the adapters and the bus make the default one (bus/logger.ts) when it is absent.
  logger: { resolve: (_name, v) => v as Logger | undefined, doc: 'pino at `LOG_LEVEL`, else info' } as OptionSpec<Logger | undefined>,
  replyTopicIdleMs: intOption(60_000, 2000, DAY_MS, '60000 ms'),
  moveDue: {
    resolve: (name, v) => {
      if (v === undefined) return true;
      if (typeof v !== 'boolean') throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected true or false`);
      return v;
    },
    doc: 'true',
  } as OptionSpec<boolean>,
} satisfies { [K in keyof Required<BusOptions>]: OptionSpec<unknown> };

/** The bus options' names: adapters accept these beside their own. */
export const BUS_OPTION_KEYS: readonly string[] = Object.keys(BUS_OPTIONS);

/**
 * The backoff table with a given default initial delay: deliveries' retries (BACKOFF_OPTIONS, 100 ms)
 * and the supervisor's restarts (SUPERVISOR_BACKOFF_OPTIONS, 200 ms) share every key and range.
 */
function backoffOptions(initialMs: number) {
  return {
    initialMs: intOption(initialMs, 0, 3_600_000, `${initialMs} ms`),
    maxMs: intOption(30_000, 0, 86_400_000, '30000 ms'),
    factor: { resolve: (name, v) => num(name, v, 2, 1, 100), doc: '2' } as OptionSpec<number>,
  } satisfies { [K in keyof Required<BackoffOptions>]: OptionSpec<unknown> };
}

export const BACKOFF_OPTIONS = backoffOptions(100);
/** The supervisor's restart delays (runtime/supervisor.ts): a longer first delay than a retry's. */
export const SUPERVISOR_BACKOFF_OPTIONS = backoffOptions(200);

/** The options an agent shares with `bus.subscribe` (its `static options` beside its own). */
export const DELIVERY_OPTIONS = {
  concurrency: intOption(1, 1, 10_000),
  maxAttempts: intOption(5, 1, 1000),
  backoff: {
    resolve: (_name, v) => resolveTable('backoff', BACKOFF_OPTIONS, v ?? {}, 'backoff.'),
    doc: '{ initialMs: 100, maxMs: 30000, factor: 2 }',
  } as OptionSpec<Resolved<typeof BACKOFF_OPTIONS>>,
  orderBy: oneOfOption(['none', 'subject'] as const),
  claimIdleMs: intOption(30_000, 50, 86_400_000, '30000 ms'),
  from: oneOfOption(['latest', 'earliest'] as const),
  drainTimeoutMs: intOption(30_000, 0, 86_400_000, '30000 ms'),
  timeoutMs: intOption(0, 0, 86_400_000),
  // Unset: follows the handlers' pace (bus/read-ahead.ts).
  readAhead: {
    resolve: (name, v) => (v === undefined ? undefined : int(name, v, 0, 0, 20_000)),
    doc: 'Redis: 2 x concurrency while handlers average under 10 ms, else 0; SQLite: 0',
  } as OptionSpec<number | undefined>,
} satisfies { [K in keyof Required<DeliveryOptions>]: OptionSpec<unknown> };

export const SUBSCRIBE_OPTIONS = {
  group: {
    resolve: (_name, v) => {
      if (typeof v !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:\-/@]{0,199}$/.test(v)) {
        throw invalid('INVALID_OPTION', `invalid group ${JSON.stringify(v)}: expected 1-200 characters of A-Z a-z 0-9 . _ : - / @`);
      }
      return v;
    },
  } as OptionSpec<string>,
  types: {
    resolve: (_name, v) => {
      if (!Array.isArray(v) || v.length === 0) throw invalid('INVALID_OPTION', `invalid types ${JSON.stringify(v)}: expected a non-empty array of types or patterns`);
      v.forEach(checkPattern);
      return [...new Set(v as string[])];
    },
  } as OptionSpec<string[]>,
  consumer: {
    resolve: (name, v) => (v === undefined ? `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}` : str(name, v, '')),
    doc: '`<hostname>/<pid>/<random>`',
  } as OptionSpec<string>,
  ...DELIVERY_OPTIONS,
  ...KEYED_OPTIONS,
  onOutcome: { resolve: (name, v) => fn(name, v as SubscribeOptions['onOutcome']), doc: 'none' } as OptionSpec<SubscribeOptions['onOutcome']>,
} satisfies { [K in keyof Required<SubscribeOptions>]: OptionSpec<unknown> };

export type ResolvedBusOptions = Resolved<typeof BUS_OPTIONS>;
export type ResolvedSubscribeOptions = Resolved<typeof SUBSCRIBE_OPTIONS>;

export function resolveBusOptions(o: BusOptions = {}): ResolvedBusOptions {
  return resolveTable('bus', BUS_OPTIONS, o);
}

export function resolveSubscribeOptions(o: SubscribeOptions): ResolvedSubscribeOptions {
  if (o === null || typeof o !== 'object') throw invalid('INVALID_OPTION', `subscribe options must be an object, got ${String(o)}`);
  return resolveTable('subscribe', SUBSCRIBE_OPTIONS, o);
}
