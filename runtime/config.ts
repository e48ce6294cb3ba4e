import type { Bus } from '../bus/contract.js';
import { invalid } from '../bus/errors.js';
import type { SqliteBusOptions } from '../adapters/sqlite/index.js';
import type { RedisBusOptions } from '../adapters/redis/index.js';
import { DEFAULT_SQLITE_PATH } from '../adapters/sqlite/defaults.js';
import { createRedisBus, createSqliteBus } from './stores.js';

export type CreateBusOptions =
  | ({ adapter: 'sqlite' } & SqliteBusOptions)
  | ({ adapter: 'redis' } & RedisBusOptions)
  | ({ adapter?: undefined } & SqliteBusOptions & RedisBusOptions);

/**
 * Builds a bus from options, then the environment: `AGENTBUS_ADAPTER` (`sqlite`, the default, or
 * `redis`), `AGENTBUS_SQLITE_PATH` (default `./data/agentbus.db`), and for Redis `REDIS_URL` or
 * `REDIS_HOST`/`REDIS_PORT`/`REDIS_USERNAME`/`REDIS_PASSWORD`/`REDIS_DB` (or `REDIS_CLUSTER_NODES`, or
 * `REDIS_SENTINELS` + `REDIS_SENTINEL_NAME` with `REDIS_SENTINEL_USERNAME`/`REDIS_SENTINEL_PASSWORD`), `AGENTBUS_REDIS_ACKS`, and
 * `AGENTBUS_REDIS_PREFIX`, `AGENTBUS_REDIS_CONNECT_TIMEOUT_MS`, `AGENTBUS_REDIS_LAYOUT` (the `layout`
 * option as JSON) and `AGENTBUS_SPOOL_PATH` (the `spool` option's path); `AGENTBUS_DEDUP_WINDOW_MS` for every
 * adapter. An empty variable counts as unset, except `AGENTBUS_REDIS_PREFIX` ('' is a prefix).
 * `readonly` opens a SQLite file read-only (never creating it); on Redis, where reading creates
 * nothing, it is dropped. Only the chosen adapter is loaded, when called (see stores.ts).
 */
export async function createBus(options: CreateBusOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<Bus> {
  const { adapter: a, ...opts } = options;
  const window = env.AGENTBUS_DEDUP_WINDOW_MS;
  const rest = opts.dedupWindowMs === undefined && window ? { ...opts, dedupWindowMs: Number(window) } : opts;
  const adapter = a ?? (env.AGENTBUS_ADAPTER || 'sqlite');
  if (adapter === 'sqlite') {
    // `spool: false` (no spool whatever the environment says) means nothing to SQLite.
    const { spool, ...o } = rest as SqliteBusOptions & { spool?: unknown };
    return createSqliteBus({ ...(spool === false || spool === undefined ? o : { ...o, spool }), path: o.path ?? (env.AGENTBUS_SQLITE_PATH || DEFAULT_SQLITE_PATH) } as SqliteBusOptions);
  }
  if (adapter === 'redis') {
    const { readonly: _, ...o } = rest as RedisBusOptions & { readonly?: boolean };
    const t = env.AGENTBUS_REDIS_CONNECT_TIMEOUT_MS;
    const connectTimeoutMs = o.connectTimeoutMs ?? (t ? (Number.isInteger(Number(t)) ? Number(t) : t) : undefined);
    const layout = o.layout ?? (env.AGENTBUS_REDIS_LAYOUT ? layoutFromEnv(env.AGENTBUS_REDIS_LAYOUT) : undefined);
    return createRedisBus({ ...o, prefix: o.prefix ?? env.AGENTBUS_REDIS_PREFIX, connectTimeoutMs, layout } as RedisBusOptions, env);
  }
  throw invalid('INVALID_OPTION', `unknown adapter ${JSON.stringify(adapter)} (AGENTBUS_ADAPTER): expected sqlite or redis`);
}

/** AGENTBUS_REDIS_LAYOUT: the Redis `layout` option as JSON (its keys and values are checked by the bus). */
function layoutFromEnv(text: string): RedisBusOptions['layout'] {
  try {
    return JSON.parse(text) as RedisBusOptions['layout'];
  } catch {
    throw invalid('INVALID_OPTION', `invalid AGENTBUS_REDIS_LAYOUT ${JSON.stringify(text.slice(0, 200))}: expected JSON such as {"verification.*":"flat"}`);
  }
}
