import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { invalid } from './errors.js';
import { checkPattern, defaultSource } from './event.js';
import type { DeliveryOutcome } from './contract.js';

/** Options every adapter's bus takes. Each default is set here and nowhere else. */
export interface BusOptions {
  /** CloudEvents `source` of published events. Default `/agentbus/<hostname>`. */
  source?: string | undefined;
  /**
   * Largest stored event (envelope JSON, UTF-8 bytes). Default 1 MiB (1048576); at most 64 MiB.
   * Also applied when reading: a larger stored entry (another program's) is not parsed and becomes
   * a dead letter `oversize`.
   */
  maxPayloadBytes?: number | undefined;
  /** A caller-chosen `id` republished (same type, source and id) within this window is stored once. Default 1 hour. */
  dedupWindowMs?: number | undefined;
  /** Per-topic retention, applied approximately (trimmed every `retention.intervalMs`). Default: keep everything. */
  retention?: RetentionOptions | undefined;
  /**
   * pino logger. Default: pino at `LOG_LEVEL` (default `info`), which logs dead letters, store
   * errors and outages, and the events a new group at `latest` skips (and the store opened, at debug;
   * at info through a logger given here).
   */
  logger?: Logger | undefined;
}

export interface RetentionOptions {
  /** Keep at most about this many events per topic. */
  maxLen?: number | undefined;
  /** Drop events older than this (by the time they were stored). */
  maxAgeMs?: number | undefined;
  /** How often to trim. Default 1000 ms. */
  intervalMs?: number | undefined;
}

export interface BackoffOptions {
  /** Delay before the 2nd attempt. Default 100 ms. */
  initialMs?: number | undefined;
  /** Ceiling of the delay. Default 30000 ms. */
  maxMs?: number | undefined;
  /** Growth per attempt. Default 2. */
  factor?: number | undefined;
}

/** Options of `bus.subscribe`. */
export interface SubscribeOptions {
  /** Consumer group: each group gets every event of its types. Required. */
  group: string;
  /** Exact types and prefix patterns (`device.*`, `*`). Required, at least one. */
  types: string[];
  /** Name of this consumer inside the group. Default `<hostname>/<pid>/<random>`. */
  consumer?: string | undefined;
  /** Handlers running at once in this consumer; also the most events it holds. Default 1 (publish order). */
  concurrency?: number | undefined;
  /** Deliveries before an event becomes a dead letter; a delivery whose consumer died counts. Default 5. */
  maxAttempts?: number | undefined;
  /** Delay between attempts: exponential with jitter (half fixed, half random). */
  backoff?: BackoffOptions | undefined;
  /** `subject`: events of one subject run one at a time, in order; others in parallel. Default `none`. */
  orderBy?: 'none' | 'subject' | undefined;
  /** A delivery whose lease is not renewed for this long goes to another consumer. Default 30000 ms. */
  claimIdleMs?: number | undefined;
  /** Where a new group starts: `latest` (events published from now on) or `earliest`. Default `latest`. */
  from?: 'latest' | 'earliest' | undefined;
  /** How long `close()` waits for handlers in flight. Default 30000 ms. */
  drainTimeoutMs?: number | undefined;
  /** Called synchronously with the outcome of each delivery (metrics, circuit breakers); must not throw. Default none. */
  onOutcome?: ((outcome: DeliveryOutcome) => void) | undefined;
}

export type ResolvedBusOptions = Required<Omit<BusOptions, 'logger' | 'retention'>> & { retention: Required<RetentionOptions> | null };
export type ResolvedSubscribeOptions = Required<Omit<SubscribeOptions, 'backoff' | 'onOutcome'>> & { backoff: Required<BackoffOptions>; onOutcome: SubscribeOptions['onOutcome'] };

const MiB = 1024 * 1024;

export function resolveBusOptions(o: BusOptions = {}): ResolvedBusOptions {
  knownKeys('bus', o, ['source', 'maxPayloadBytes', 'dedupWindowMs', 'retention', 'logger']);
  const r = o.retention;
  if (r !== undefined) knownKeys('retention', r, ['maxLen', 'maxAgeMs', 'intervalMs']);
  return {
    source: str('source', o.source, defaultSource),
    maxPayloadBytes: int('maxPayloadBytes', o.maxPayloadBytes, MiB, 64, 64 * MiB),
    dedupWindowMs: int('dedupWindowMs', o.dedupWindowMs, 3_600_000, 0, 365 * 86_400_000),
    retention:
      r === undefined || (r.maxLen === undefined && r.maxAgeMs === undefined)
        ? null
        : {
            maxLen: int('retention.maxLen', r.maxLen, Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER),
            maxAgeMs: int('retention.maxAgeMs', r.maxAgeMs, Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER),
            intervalMs: int('retention.intervalMs', r.intervalMs, 1000, 10, 3_600_000),
          },
  };
}

export function resolveSubscribeOptions(o: SubscribeOptions): ResolvedSubscribeOptions {
  if (o === null || typeof o !== 'object') throw invalid('INVALID_OPTION', `subscribe options must be an object, got ${String(o)}`);
  knownKeys('subscribe', o, ['group', 'types', 'consumer', 'concurrency', 'maxAttempts', 'backoff', 'orderBy', 'claimIdleMs', 'from', 'drainTimeoutMs', 'onOutcome']);
  if (typeof o.group !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:\-/@]{0,199}$/.test(o.group)) {
    throw invalid('INVALID_OPTION', `invalid group ${JSON.stringify(o.group)}: expected 1-200 characters of A-Z a-z 0-9 . _ : - / @`);
  }
  if (!Array.isArray(o.types) || o.types.length === 0) {
    throw invalid('INVALID_OPTION', `invalid types ${JSON.stringify(o.types)}: expected a non-empty array of types or patterns`);
  }
  o.types.forEach(checkPattern);
  const b = o.backoff ?? {};
  knownKeys('backoff', b, ['initialMs', 'maxMs', 'factor']);
  const claimIdleMs = int('claimIdleMs', o.claimIdleMs, 30_000, 50, 86_400_000);
  return {
    group: o.group,
    types: [...new Set(o.types)],
    consumer: str('consumer', o.consumer, `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`),
    concurrency: int('concurrency', o.concurrency, 1, 1, 10_000),
    maxAttempts: int('maxAttempts', o.maxAttempts, 5, 1, 1000),
    backoff: {
      initialMs: int('backoff.initialMs', b.initialMs, 100, 0, 3_600_000),
      maxMs: int('backoff.maxMs', b.maxMs, 30_000, 0, 86_400_000),
      factor: num('backoff.factor', b.factor, 2, 1, 100),
    },
    orderBy: oneOf('orderBy', o.orderBy, ['none', 'subject'] as const),
    claimIdleMs,
    from: oneOf('from', o.from, ['latest', 'earliest'] as const),
    drainTimeoutMs: int('drainTimeoutMs', o.drainTimeoutMs, 30_000, 0, 86_400_000),
    onOutcome: fn('onOutcome', o.onOutcome),
  };
}

// Validators: each names the option, the value and what is accepted.

export function int(name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected an integer from ${min} to ${max}`);
  }
  return v;
}

function num(name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected a number from ${min} to ${max}`);
  }
  return v;
}

function fn<F>(name: string, v: F | undefined): F | undefined {
  if (v !== undefined && typeof v !== 'function') throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected a function`);
  return v;
}

export function str(name: string, v: unknown, dflt: string): string {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || v === '' || v.length > 1000) {
    throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected a non-empty string of at most 1000 characters`);
  }
  return v;
}

export function oneOf<T extends string>(name: string, v: unknown, values: readonly T[]): T {
  if (v === undefined) return values[0];
  if (!values.includes(v as T)) {
    throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected one of ${values.join(', ')}`);
  }
  return v as T;
}

/** A misspelt option is an error, not a silently ignored default. */
export function knownKeys(what: string, o: object, keys: string[]): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw invalid('INVALID_OPTION', `unknown ${what} option ${JSON.stringify(k)}: expected one of ${keys.join(', ')}`);
  }
}
