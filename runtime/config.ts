import type { Bus } from '../bus/contract.js';
import { invalid } from '../bus/errors.js';
import { createSqliteBus, DEFAULT_SQLITE_PATH, type SqliteBusOptions } from '../adapters/sqlite/index.js';
import { createRedisBus, type RedisBusOptions } from '../adapters/redis/index.js';

export type CreateBusOptions =
  | ({ adapter: 'sqlite' } & SqliteBusOptions)
  | ({ adapter: 'redis' } & RedisBusOptions)
  | ({ adapter?: undefined } & SqliteBusOptions & RedisBusOptions);

/**
 * Builds a bus from options, then the environment: `AGENTBUS_ADAPTER` (`sqlite`, the default, or
 * `redis`), `AGENTBUS_SQLITE_PATH` (default `./data/agentbus.db`), and for Redis `REDIS_URL` or
 * `REDIS_HOST`/`REDIS_PORT`/`REDIS_USERNAME`/`REDIS_PASSWORD`/`REDIS_DB` (or `REDIS_CLUSTER_NODES`), and
 * `AGENTBUS_REDIS_PREFIX` and `AGENTBUS_REDIS_CONNECT_TIMEOUT_MS`; `AGENTBUS_DEDUP_WINDOW_MS` for every
 * adapter. An empty variable counts as unset, except `AGENTBUS_REDIS_PREFIX` ('' is a prefix).
 * `readonly` opens a SQLite file read-only (never creating it); on Redis, where reading creates
 * nothing, it is dropped.
 */
export async function createBus(options: CreateBusOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<Bus> {
  const { adapter: a, ...opts } = options;
  const window = env.AGENTBUS_DEDUP_WINDOW_MS;
  const rest = opts.dedupWindowMs === undefined && window ? { ...opts, dedupWindowMs: Number(window) } : opts;
  const adapter = a ?? (env.AGENTBUS_ADAPTER || 'sqlite');
  if (adapter === 'sqlite') {
    const o = rest as SqliteBusOptions;
    return createSqliteBus({ ...o, path: o.path ?? (env.AGENTBUS_SQLITE_PATH || DEFAULT_SQLITE_PATH) });
  }
  if (adapter === 'redis') {
    const { readonly: _, ...o } = rest as RedisBusOptions & { readonly?: boolean };
    const t = env.AGENTBUS_REDIS_CONNECT_TIMEOUT_MS;
    const connectTimeoutMs = o.connectTimeoutMs ?? (t ? (Number.isInteger(Number(t)) ? Number(t) : t) : undefined);
    return createRedisBus({ ...o, prefix: o.prefix ?? env.AGENTBUS_REDIS_PREFIX, connectTimeoutMs } as RedisBusOptions, env);
  }
  throw invalid('INVALID_OPTION', `unknown adapter ${JSON.stringify(adapter)} (AGENTBUS_ADAPTER): expected sqlite or redis`);
}
