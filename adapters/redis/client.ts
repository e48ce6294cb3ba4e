/**
 * ioredis plumbing shared by the Redis store's parts: the client types, the batch that stands in for
 * a Pipeline on a cluster, running a batch, and the store context (client, keys, batch) each part
 * of the driver works with.
 */
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import type { Keys } from './keys.js';
import { fulfilsBy } from '../../bus/closing.js';

export type Client = Redis | Cluster;
/** The client with the scripts defined on it (scripts/), called by name. */
export type Commands = Redis & Record<string, (...args: unknown[]) => Promise<unknown>>;
/** The client or a pipeline: both take the same commands, including the scripts. */
export type Sender = Record<string, (...args: unknown[]) => unknown>;
/** One command's outcome in a batch's exec(): its error, or null and its result. */
export type Reply = [Error | null, unknown];

/** What the parts of the driver share: the command connection, the key layout, and how to batch. */
export interface RedisStore {
  cmd: Commands;
  keys: Keys;
  /** A Redis Cluster: no multi-slot pipelines, reads grouped by slot, SCAN on every master. */
  cluster: boolean;
  /** A pipeline on one Redis, a batch of routed commands on a cluster; both take the scripts. */
  batch(): Sender;
}

export function redisStore(client: Client, keys: Keys): RedisStore {
  const cmd = client as Commands;
  const cluster = (client as Cluster).isCluster === true;
  return { cmd, keys, cluster, batch: () => (cluster ? clusterBatch(cmd) : (cmd.pipeline() as unknown as Sender)) };
}

/** Runs a batch; the first failed command's error is thrown. */
export async function execAll(p: ChainableCommander | Sender): Promise<void> {
  for (const [err] of (await (p as ChainableCommander).exec()) ?? []) if (err) throw err;
}

/** Runs a batch and returns every command's outcome, failed ones included. */
export async function execReplies(b: Sender): Promise<Reply[]> {
  return (await (b.exec as () => Promise<Reply[] | null>)()) ?? [];
}

/** A reply's result, or `fallback` when that command failed. */
export const ok = <T>(r: Reply, fallback: T): T => (r[0] ? fallback : (r[1] as T));

/**
 * A cluster's stand-in for a Pipeline, whose keys must all share one slot there: it records the
 * commands and sends them at once as separate commands (ioredis routes each to its node), and
 * `exec()` answers in a Pipeline's shape, `[error, result]` per command.
 */
function clusterBatch(client: Commands): Sender {
  const calls: Array<() => Promise<unknown>> = [];
  return new Proxy({} as Sender, {
    get: (_, name: string) =>
      name === 'exec'
        ? () => Promise.all(calls.map((c) => c().then((r) => [null, r] as const, (e: Error) => [e, null] as const)))
        : (...args: unknown[]) => void calls.push(() => client[name](...args)),
  });
}

/** A Redis error whose message starts with `code` (NOGROUP, BUSYGROUP...). */
export const isRedisError = (err: unknown, code: string): boolean => String((err as Error)?.message).startsWith(code);

/** A flat `[k, v, k, v]` reply (XINFO, HGETALL, an entry's fields) as an object. */
export function pairs(list: unknown[], from = 0): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = from; i + 1 < list.length; i += 2) o[String(list[i])] = list[i + 1];
  return o;
}

/** The server's clock (ms): hosts' clocks may disagree, and a skewed one must not decide. */
export async function serverNow(s: RedisStore): Promise<number> {
  const [sec, usec] = await s.cmd.time();
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}

/** How long closing waits for QUIT's answer on a connected connection before dropping it (a stopped Redis never answers). */
export const QUIT_MS = 1000;

/**
 * Closes a connection the bus opened without waiting out ioredis' retries: QUIT while it is
 * connected (its answer awaited QUIT_MS at most, then the connection is dropped), else dropped at
 * once (drop). ioredis' quit() on a reconnecting connection waits in its offline queue through
 * every reconnect: about 37 s with the bus' retry settings, for nothing.
 */
export async function closeConnection(conn: Client): Promise<void> {
  if (conn.status !== 'ready') return drop(conn);
  if (!(await fulfilsBy(conn.quit(), Date.now() + QUIT_MS))) drop(conn);
}

/**
 * disconnect(), and the commands still queued on the connection rejected with ioredis' own
 * "Connection is closed." error: a reconnecting connection's disconnect() only stops the
 * reconnects, leaving its offline queue (and whoever awaits it, a publish say) pending forever.
 */
export function drop(conn: Client): void {
  const reconnecting = conn.status === 'reconnecting' || conn.status === 'connecting';
  conn.disconnect();
  const flush = (conn as unknown as { flushQueue?: (err: Error) => void }).flushQueue;
  if (reconnecting && typeof flush === 'function') flush.call(conn, new Error('Connection is closed.'));
}
