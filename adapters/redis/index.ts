import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { pino } from 'pino';
import type { Bus } from '../../bus/contract.js';
import { busFromDriver } from '../../bus/engine.js';
import { ConnectionError, invalid } from '../../bus/errors.js';
import { int, knownKeys, resolveBusOptions, type BusOptions } from '../../bus/options.js';
import { Keys, RedisDriver } from './driver.js';
import { scripts } from './scripts.js';
import { statsScripts } from './stats-scripts.js';

export interface RedisBusOptions extends BusOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. Default `REDIS_URL`, else the fields below. */
  url?: string;
  /** Default `REDIS_HOST`, else 127.0.0.1. */
  host?: string;
  /** Default `REDIS_PORT`, else 6379. */
  port?: number;
  /** ACL user. Default `REDIS_USERNAME`. */
  username?: string;
  /** Default `REDIS_PASSWORD`. Never logged. */
  password?: string;
  /** Database number. Default `REDIS_DB`, else 0. */
  db?: number;
  /** TLS options for `host`/`port` (a `rediss://` URL turns TLS on by itself). */
  tls?: RedisOptions['tls'];
  /** Stream key of a topic is `<prefix><type>`; may be '' to consume existing streams by name. Default `events:`. */
  prefix?: string;
  /** How long start-up waits for Redis before failing with CONNECTION_FAILED. Default 10000 ms. */
  connectTimeoutMs?: number;
  /**
   * Redis Cluster seed nodes (`host:port` strings or `{ host, port }`); the cluster's other nodes
   * are discovered. `username`, `password` and `tls` apply to every node. Default
   * `REDIS_CLUSTER_NODES` (`host:port,host:port`); when set, `url` and `host`/`port` are not used.
   */
  cluster?: Array<string | { host: string; port: number }>;
  /** A connected ioredis client (Redis or Cluster) to use (not closed by the bus); reader connections are duplicated from it. */
  client?: Redis | Cluster;
}

const OWN_KEYS = ['url', 'host', 'port', 'username', 'password', 'db', 'tls', 'prefix', 'connectTimeoutMs', 'cluster', 'client'];
const COMMON_KEYS = ['source', 'maxPayloadBytes', 'dedupWindowMs', 'retention', 'logger'];

/** Connects (failing within `connectTimeoutMs` when Redis is unreachable) and returns a Redis Streams bus. */
export async function createRedisBus(options: RedisBusOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<Bus> {
  knownKeys('redis', options, [...OWN_KEYS, ...COMMON_KEYS]);
  const { url, host, port, username, password, db, tls, prefix = 'events:', connectTimeoutMs, cluster, client, ...common } = options;
  resolveBusOptions(common);
  const timeout = int('connectTimeoutMs', connectTimeoutMs, 10_000, 100, 600_000);
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw new ConnectionError('CONNECTION_FAILED', `invalid prefix ${JSON.stringify(prefix)}: expected a string without braces`);
  const log = common.logger ?? pino({ name: 'agentbus', level: env.LOG_LEVEL ?? 'info' });
  const base: RedisOptions = {
    lazyConnect: true,
    connectTimeout: Math.min(timeout, 10_000),
    // Reconnect with backoff up to 2 s; a publish waits in the offline queue for up to 20 retries.
    retryStrategy: (times) => Math.min(2000, 50 * 2 ** Math.min(times, 6)),
  };
  const target = url ?? env.REDIS_URL;
  const seeds = cluster ?? (env.REDIS_CLUSTER_NODES ? env.REDIS_CLUSTER_NODES.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
  let redis: Redis | Cluster;
  if (client) redis = client;
  else if (seeds) {
    redis = new Cluster(seeds.map(clusterNode), {
      lazyConnect: true,
      clusterRetryStrategy: base.retryStrategy,
      redisOptions: {
        connectTimeout: base.connectTimeout,
        username: username ?? env.REDIS_USERNAME,
        password: password ?? env.REDIS_PASSWORD,
        ...(tls ? { tls } : {}),
      },
    });
  } else if (target) redis = new Redis(target, { ...base, ...(tls ? { tls } : {}) });
  else {
    redis = new Redis({
      ...base,
      host: host ?? env.REDIS_HOST ?? '127.0.0.1',
      port: port ?? (env.REDIS_PORT ? Number(env.REDIS_PORT) : 6379),
      username: username ?? env.REDIS_USERNAME,
      password: password ?? env.REDIS_PASSWORD,
      db: db ?? (env.REDIS_DB ? Number(env.REDIS_DB) : 0),
      ...(tls ? { tls } : {}),
    });
  }
  const where = seeds ? `cluster ${seeds.map((n) => (typeof n === 'string' ? n : `${n.host}:${n.port}`)).join(',')}` : describeTarget(target, redis as Redis);
  redis.on('error', (err: Error) => log.warn({ redis: where, err: redact(err.message) }, 'redis connection error'));
  for (const [name, def] of Object.entries({ ...scripts, ...statsScripts })) redis.defineCommand(name, def);
  if (!client) await connect(redis, where, timeout);
  const driver = new RedisDriver(redis, new Keys(prefix), log, client === undefined);
  return busFromDriver(driver, common);
}

/** `host:port` or `{ host, port }`, checked, for the Cluster constructor. */
function clusterNode(n: string | { host: string; port: number }): { host: string; port: number } {
  const [host, port] = typeof n === 'string' ? [n.slice(0, n.lastIndexOf(':')), Number(n.slice(n.lastIndexOf(':') + 1))] : [n?.host, n?.port];
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid('INVALID_OPTION', `invalid cluster node ${JSON.stringify(n)}: expected host:port or { host, port }`);
  }
  return { host, port };
}

async function connect(redis: Redis | Cluster, where: string, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect().then(() => redis.ping()),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
    ]);
  } catch (err) {
    redis.disconnect();
    throw new ConnectionError('CONNECTION_FAILED', `cannot reach Redis at ${where}: ${redact((err as Error).message)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** host:port/db with any password removed, for messages and logs. */
function describeTarget(url: string | undefined, redis: Redis): string {
  if (url) return redactUrl(url);
  const o = redis.options;
  return `${o.tls ? 'rediss' : 'redis'}://${o.host}:${o.port}/${o.db ?? 0}`;
}

export function redactUrl(url: string): string {
  return url.replace(/^(\w+:\/\/)([^@/]*)@/, (_, scheme: string, auth: string) => `${scheme}${auth.includes(':') ? `${auth.split(':')[0]}:***` : '***'}@`);
}

const redact = (message: string) => message.replace(/(\w+:\/\/)[^@/\s]*@/g, '$1***@');
