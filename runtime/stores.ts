/**
 * The two adapters' factories as the package root offers them: each loads its adapter (SQLite with
 * its native module better-sqlite3, Redis with ioredis) on its first call, so importing the root
 * (`import { BaseAgent } from 'agentbus'`) loads neither store. `agentbus/sqlite` and
 * `agentbus/redis` are the adapters themselves, loaded on import.
 */
import type { Bus } from '../bus/contract.js';
import type { RedisBusOptions } from '../adapters/redis/index.js';
import type { SqliteBusOptions } from '../adapters/sqlite/index.js';

/** Opens (creating if needed) a SQLite-backed bus: see adapters/sqlite/index.ts. */
export async function createSqliteBus(options?: SqliteBusOptions): Promise<Bus> {
  const sqlite = await import('../adapters/sqlite/index.js');
  return sqlite.createSqliteBus(options);
}

/** Connects and returns a Redis Streams bus: see adapters/redis/index.ts. */
export async function createRedisBus(options?: RedisBusOptions, env?: NodeJS.ProcessEnv): Promise<Bus> {
  const redis = await import('../adapters/redis/index.js');
  return redis.createRedisBus(options, env);
}
