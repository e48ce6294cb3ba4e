import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisForTests } from './redis.js';

/**
 * The stores an example test runs on: SQLite (a fresh file) always, Redis when a server is at
 * hand (REDIS_URL or redis-server on PATH; required in CI). Each comes as the environment a user
 * would set.
 */
export async function exampleStores(what: string): Promise<Array<{ name: string; env: Record<string, string> }>> {
  const dir = mkdtempSync(join(tmpdir(), 'agentbus-example-'));
  const stores: Array<{ name: string; env: Record<string, string> }> = [{ name: 'sqlite', env: { AGENTBUS_ADAPTER: 'sqlite', AGENTBUS_SQLITE_PATH: join(dir, 'bus.db') } }];
  const redis = await redisForTests(`${what} on redis`);
  if (redis) stores.push({ name: 'redis', env: { AGENTBUS_ADAPTER: 'redis', REDIS_URL: redis.url } });
  return stores;
}
