/** The Redis bus' `spool` option (and `AGENTBUS_SPOOL_PATH`), checked, with its defaults. */
import { invalid } from '../../../bus/errors.js';
import { int, knownKeys } from '../../../bus/validate.js';

/**
 * Opt-in: while Redis is unreachable, publishes are written to a local SQLite file and forwarded,
 * in order per topic and with their ids, once it is back (see README, "Spool when Redis is down").
 */
export interface SpoolOptions {
  /** The spool's SQLite file (created with its folder; one bus at a time per file). Required; `AGENTBUS_SPOOL_PATH` sets it from the environment. */
  path: string;
  /** Most bytes the spool holds (each event's envelope and stored body); a publish that would pass it rejects with SPOOL_FULL. From 1024. Default 268435456 (256 MiB). */
  maxBytes?: number | undefined;
  /** How long a publish waits for Redis before counting it unreachable and spooling (a hung server, a lost network). 100 to 600000. Default 5000 ms. */
  timeoutMs?: number | undefined;
}

export interface ResolvedSpoolOptions {
  path: string;
  maxBytes: number;
  timeoutMs: number;
}

const KEYS = ['path', 'maxBytes', 'timeoutMs'];

/** The `spool` option, else `AGENTBUS_SPOOL_PATH` (empty counts as unset); null: no spool (`false`: none whatever the environment says). */
export function resolveSpoolOptions(spool: unknown, env: NodeJS.ProcessEnv): ResolvedSpoolOptions | null {
  if (spool === false) return null;
  const given = spool ?? (env.AGENTBUS_SPOOL_PATH ? { path: env.AGENTBUS_SPOOL_PATH } : undefined);
  if (given === undefined) return null;
  if (given === null || typeof given !== 'object' || Array.isArray(given)) {
    throw invalid('INVALID_OPTION', `invalid spool ${JSON.stringify(given)}: expected { path, maxBytes?, timeoutMs? } or false`);
  }
  knownKeys('spool', given, KEYS);
  const o = given as SpoolOptions;
  if (typeof o.path !== 'string' || o.path === '' || o.path === ':memory:') {
    throw invalid('INVALID_OPTION', `invalid spool path ${JSON.stringify(o.path)} (spool.path, AGENTBUS_SPOOL_PATH): expected a file path (a spool must survive the process)`);
  }
  return {
    path: o.path,
    maxBytes: int('spool.maxBytes', o.maxBytes, 256 * 1024 ** 2, 1024, 2 ** 50),
    timeoutMs: int('spool.timeoutMs', o.timeoutMs, 5000, 100, 600_000),
  };
}
