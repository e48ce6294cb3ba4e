/**
 * The spool's wiring into the Redis bus (loaded only with the `spool` option, so a Redis bus
 * without one never loads better-sqlite3): the publish connection and the spool itself.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AppendEntry, AppendHas } from '../../../bus/driver.js';
import { defineAllScripts } from '../scripts/index.js';
import { SpoolFile } from './file.js';
import type { ResolvedSpoolOptions } from './options.js';
import { RedisSpool } from './spool.js';

/**
 * The connection publishes go through when the bus has a spool, so a publish learns at once that
 * Redis is unreachable instead of waiting in ioredis' offline queue through its reconnects: no
 * offline queue (refused while not connected), commands in flight when the connection drops are
 * failed rather than resent, and none waits past `timeoutMs` (plus a replicated append's WAIT).
 * Such an append may still have reached Redis: its events are spooled and forwarded with the same
 * ids through the dedup check (see README on what that guarantees).
 */
export function publishConnection(redis: Redis, timeoutMs: number): Redis {
  const conn = redis.duplicate({ lazyConnect: true, enableOfflineQueue: false, autoResendUnfulfilledCommands: false, commandTimeout: timeoutMs, maxRetriesPerRequest: 0 });
  defineAllScripts(conn);
  // Its outages are the command connection's, which logs them (outage.ts); here they only fail publishes over to the spool.
  conn.on('error', () => {});
  return conn;
}

/** Opens the spool file and the spool forwarding through `send`; `conn`'s reconnects wake its forwarder. */
export function openSpool(o: ResolvedSpoolOptions, conn: Redis, send: (entries: AppendEntry[], has?: AppendHas) => Promise<void>, dedupWindowMs: number, log: Logger): RedisSpool {
  const spool = new RedisSpool(new SpoolFile(o.path), send, o, dedupWindowMs, log);
  conn.on('ready', () => spool.ready());
  return spool;
}
