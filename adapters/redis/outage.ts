/** Logging a Redis connection's outages once each. */
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Logs a Redis connection's outages once each: ioredis emits 'error' on every failed reconnect
 * (every 2 s at most, per connection, see the retry strategy in index.ts), which would fill the log
 * while Redis is down. The first error of an outage is a warning, naming the connection and the
 * error; the next ones are debug lines; the 'ready' that ends it is one info line with its length.
 * `fields` gives the log fields of an error (where, and its message with any password scrubbed).
 * `downSince`: an outage under way already (Redis unreachable at start, which the bus logged).
 */
export function watchConnection(conn: Redis | Cluster, log: Logger, what: string, fields: (err: Error) => Record<string, unknown>, downSince: number | null = null): void {
  conn.on('error', (err: Error) => {
    if (downSince !== null) {
      if (log.isLevelEnabled('debug')) log.debug(fields(err), `${what} error (still reconnecting)`);
      return;
    }
    downSince = Date.now();
    log.warn(fields(err), `${what} error; reconnecting (further errors are not logged until it is back)`);
  });
  conn.on('ready', () => {
    if (downSince === null) return;
    const downMs = Date.now() - downSince;
    downSince = null;
    const { err: _, ...where } = fields(new Error(''));
    log.info({ ...where, downMs }, `${what} back after ${(downMs / 1000).toFixed(1)} s`);
  });
}
