import type { Bus } from '../bus/contract.js';
import { invalid } from '../bus/errors.js';
import { createSqliteBus, DEFAULT_SQLITE_PATH, type SqliteBusOptions } from '../adapters/sqlite/index.js';

export type CreateBusOptions = ({ adapter: 'sqlite' } & SqliteBusOptions) | ({ adapter?: undefined } & SqliteBusOptions);

/**
 * Builds a bus from options, then the environment: `AGENTBUS_ADAPTER` (`sqlite`, the default;
 * `redis` arrives with the Redis adapter) and `AGENTBUS_SQLITE_PATH` (default `./data/agentbus.db`).
 */
export async function createBus(options: CreateBusOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<Bus> {
  const { adapter: a, ...rest } = options;
  const adapter = a ?? env.AGENTBUS_ADAPTER ?? 'sqlite';
  if (adapter === 'sqlite') {
    return createSqliteBus({ ...rest, path: rest.path ?? (env.AGENTBUS_SQLITE_PATH || DEFAULT_SQLITE_PATH) });
  }
  throw invalid('INVALID_OPTION', `unknown adapter ${JSON.stringify(adapter)} (AGENTBUS_ADAPTER): expected sqlite`);
}
