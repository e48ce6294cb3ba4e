/** The Redis Streams adapter's entry point (`agentbus/redis`): its options, checked, and createRedisBus, which connects and checks the server. */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Bus } from '../../bus/contract.js';
import { busFromDriver } from '../../bus/engine.js';
import { ConnectionError, invalid } from '../../bus/errors.js';
import type { BusOptions } from '../../bus/contract.js';
import { defaultLogger } from '../../bus/logger.js';
import { BUS_OPTION_KEYS, resolveBusOptions } from '../../bus/options.js';
import { int, knownKeys } from '../../bus/validate.js';
import { RedisDriver } from './driver.js';
import { evictionOptIn } from './findings.js';
import { checkServer } from './health.js';
import { Keys } from './keys.js';
import { Layouts } from './layout.js';
import { RedisPressure } from './pressure.js';
import { defineAllScripts } from './scripts/index.js';
import { checkUrl, dbNumber, describeTarget, MAX_DB, scrubber, urlPasswords } from './target.js';
import { watchConnection } from './outage.js';

export interface RedisBusOptions extends BusOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. Default `REDIS_URL`, else the fields below. */
  url?: string | undefined;
  /** Default `REDIS_HOST`, else 127.0.0.1. */
  host?: string | undefined;
  /** Default `REDIS_PORT`, else 6379. */
  port?: number | undefined;
  /** ACL user. Default `REDIS_USERNAME`. */
  username?: string | undefined;
  /** Default `REDIS_PASSWORD`. Never logged. */
  password?: string | undefined;
  /** Database number, an integer from 0 (checked at connect: a database the server lacks fails with CONNECTION_FAILED). Default `REDIS_DB`, else 0. */
  db?: number | undefined;
  /** TLS options for `host`/`port` (a `rediss://` URL turns TLS on by itself). */
  tls?: RedisOptions['tls'] | undefined;
  /** Stream key of a topic is `<prefix><type>`; may be '' to consume existing streams by name. Default `events:`. */
  prefix?: string | undefined;
  /** How long start-up waits for Redis before failing with CONNECTION_FAILED. Default 10000 ms. */
  connectTimeoutMs?: number | undefined;
  /**
   * Redis Cluster seed nodes (`host:port` strings or `{ host, port }`); the cluster's other nodes
   * are discovered. `username`, `password` and `tls` apply to every node. Default
   * `REDIS_CLUSTER_NODES` (`host:port,host:port`); when set, `url` and `host`/`port` are not used.
   */
  cluster?: Array<string | { host: string; port: number }> | undefined;
  /** A connected ioredis client (Redis or Cluster) to use (not closed by the bus); reader connections are duplicated from it. */
  client?: Redis | Cluster | undefined;
  /**
   * Start although Redis' `maxmemory-policy` is an `allkeys-*` one, which can evict streams, groups
   * and dead letters while publishes succeed (a warning instead of a ConfigurationError). Default
   * `AGENTBUS_ALLOW_EVICTION=1`, else false.
   */
  allowEvictionPolicy?: boolean | undefined;
  /**
   * How publishes are written to each topic's stream, by event type or `prefix*` pattern (an exact
   * type wins, then the longest prefix): `fields` (default: each CloudEvents attribute a field of its
   * own, `specversion` first, and `data` as JSON text: what seed 003's Python consumer reads), `flat`
   * (data's top-level keys as the fields, for consumers that expect seed 001's flat entries; data must
   * be an object of strings, numbers and booleans; attributes ride along as `ce_id`, `ce_type`...,
   * so data keys starting with `ce_` are refused) or `envelope` (one `event` field holding the
   * envelope as JSON, as agentbus 0.1 wrote). Reading understands every layout whatever this says.
   * Example: `{ 'verification.*': 'flat' }`. Default: every topic `fields`.
   */
  layout?: Record<string, 'fields' | 'flat' | 'envelope'> | undefined;
}

const OWN_KEYS = ['url', 'host', 'port', 'username', 'password', 'db', 'tls', 'prefix', 'connectTimeoutMs', 'cluster', 'client', 'allowEvictionPolicy', 'layout'];
const COMMON_KEYS = BUS_OPTION_KEYS;

/** Connects (failing within `connectTimeoutMs` when Redis is unreachable) and returns a Redis Streams bus. */
export async function createRedisBus(options: RedisBusOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<Bus> {
  knownKeys('redis', options, [...OWN_KEYS, ...COMMON_KEYS]);
  const { url, host, port, username, password, db, tls, prefix = 'events:', connectTimeoutMs, cluster, client, allowEvictionPolicy, layout, ...common } = options;
  resolveBusOptions(common);
  const layouts = new Layouts(layout);
  const timeout = int('connectTimeoutMs', connectTimeoutMs, 10_000, 100, 600_000);
  const allowEviction = evictionOptIn(allowEvictionPolicy, env);
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw invalid('INVALID_OPTION', `invalid prefix ${JSON.stringify(prefix)}: expected a string without braces (agentbus' own keys use them as cluster hash tags)`);
  }
  const log = common.logger ?? defaultLogger(env);
  const base: RedisOptions = {
    lazyConnect: true,
    connectTimeout: Math.min(timeout, 10_000),
    // Reconnect with backoff up to 2 s; a publish waits in the offline queue for up to 20 retries.
    retryStrategy: (times) => Math.min(2000, 50 * 2 ** Math.min(times, 6)),
  };
  // Empty variables count as unset.
  const target = url ?? (env.REDIS_URL || undefined);
  const nodes = env.REDIS_CLUSTER_NODES ? env.REDIS_CLUSTER_NODES.split(',').map((s) => s.trim()).filter(Boolean) : [];
  const seeds = cluster ?? (nodes.length ? nodes : undefined);
  // Every password in play, in every form, is scrubbed from what the bus logs or throws.
  let scrub = scrubber([password, env.REDIS_PASSWORD, ...(target ? urlPasswords(target) : [])]);
  let redis: Redis | Cluster;
  let where: string;
  if (client) {
    redis = client;
    const o = (client as Cluster).isCluster ? (client as Cluster).options.redisOptions ?? {} : (client as Redis).options;
    scrub = scrubber([password, env.REDIS_PASSWORD, o.password]);
    where = (client as Cluster).isCluster ? 'cluster (given client)' : describeTarget(o);
  } else if (seeds) {
    const parsed = seeds.map((n) => clusterNode(n, scrub));
    redis = new Cluster(parsed, {
      lazyConnect: true,
      clusterRetryStrategy: base.retryStrategy,
      redisOptions: {
        connectTimeout: base.connectTimeout,
        username: username ?? (env.REDIS_USERNAME || undefined),
        password: password ?? (env.REDIS_PASSWORD || undefined),
        ...(tls ? { tls } : {}),
      },
    });
    where = `cluster ${parsed.map((n) => `${n.host}:${n.port}`).join(',')}`;
  } else {
    if (db !== undefined) int('db', db, 0, 0, MAX_DB);
    if (target) {
      checkUrl(target, scrub);
      try {
        redis = new Redis(target, { ...base, ...(tls ? { tls } : {}) });
      } catch (err) {
        throw invalid('INVALID_OPTION', `invalid Redis URL (url or REDIS_URL): ${scrub((err as Error).message)}`);
      }
    } else {
      redis = new Redis({
        ...base,
        host: host ?? (env.REDIS_HOST || '127.0.0.1'),
        port: port ?? (env.REDIS_PORT ? Number(env.REDIS_PORT) : 6379),
        username: username ?? (env.REDIS_USERNAME || undefined),
        password: password ?? (env.REDIS_PASSWORD || undefined),
        db: db ?? (env.REDIS_DB ? dbNumber(`REDIS_DB ${JSON.stringify(env.REDIS_DB)}`, env.REDIS_DB) : 0),
        ...(tls ? { tls } : {}),
      });
    }
    const o = (redis as Redis).options;
    scrub = scrubber([password, env.REDIS_PASSWORD, ...(target ? urlPasswords(target) : []), o.password]);
    if (!Number.isInteger(o.db) || o.db! < 0 || o.db! > MAX_DB) {
      redis.disconnect();
      throw invalid('INVALID_OPTION', `invalid database ${scrub(String(o.db))} in the Redis URL (url or REDIS_URL): expected an integer from 0 to ${MAX_DB}`);
    }
    where = describeTarget(o);
  }
  watchConnection(redis, log, 'redis connection', (err) => ({ redis: where, connection: 'command', err: scrub(err.message) }));
  defineAllScripts(redis);
  if (!client) await connect(redis, where, timeout, scrub);
  const health = await checkServer(redis, { allowEvictionPolicy: allowEviction }, log).catch((err) => {
    if (!client) redis.disconnect();
    throw err;
  });
  const keys = new Keys(prefix);
  const driver = health.guard(new RedisDriver(redis, keys, log, client === undefined, (err) => ({ redis: where, err: scrub(err.message) }), layouts));
  new RedisPressure(redis, keys, health).watch(driver);
  // Info through a logger the caller passed (agentbus start passes its own); the default logger keeps it at debug.
  log[common.logger ? 'info' : 'debug']({ store: 'redis', redis: where, prefix }, `store: Redis at ${where}`);
  return busFromDriver(driver, { ...common, logger: log });
}

/** `host:port` or `{ host, port }`, checked, for the Cluster constructor. */
function clusterNode(n: string | { host: string; port: number }, scrub: (s: string) => string): { host: string; port: number } {
  const [host, port] = typeof n === 'string' ? [n.slice(0, n.lastIndexOf(':')), Number(n.slice(n.lastIndexOf(':') + 1))] : [n?.host, n?.port];
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid('INVALID_OPTION', `invalid cluster node ${scrub(JSON.stringify(n))}: expected host:port or { host, port }`);
  }
  return { host, port };
}

/**
 * Connects and checks the connection answers, then that the database was selected: ioredis
 * reports a refused SELECT as an error event and goes on in database 0.
 */
async function connect(redis: Redis | Cluster, where: string, timeoutMs: number, scrub: (s: string) => string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const db = (redis as Cluster).isCluster ? 0 : ((redis as Redis).options.db ?? 0);
  let step = 'cannot reach Redis at';
  try {
    await Promise.race([
      (async () => {
        await redis.connect();
        await redis.ping();
        step = `cannot select database ${db} on`;
        if (db !== 0) await (redis as Redis).select(db);
      })(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
    ]);
  } catch (err) {
    redis.disconnect();
    const e = err as Error;
    // The cause keeps the name and the scrubbed message only: ioredis errors carry the failed
    // command's arguments (AUTH's are the password).
    const cause = Object.assign(new Error(scrub(e.message)), { name: e.name });
    throw new ConnectionError('CONNECTION_FAILED', `${step} ${where}: ${scrub(e.message)}`, { cause });
  } finally {
    clearTimeout(timer);
  }
}
