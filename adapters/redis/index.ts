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
import { checkServer, StoreHealth } from './health.js';
import type { ReplicatedAcks } from './streams.js';
import { Keys } from './keys.js';
import { Layouts } from './layout.js';
import { RedisPressure } from './pressure.js';
import { defineAllScripts } from './scripts/index.js';
import { checkUrl, dbNumber, describeTarget, MAX_DB, scrubber, urlPasswords } from './target.js';
import { watchConnection } from './outage.js';
import { resolveSpoolOptions, type SpoolOptions } from './spool/options.js';
import { isUnreachable } from './spool/unreachable.js';
import { StartGate } from './start.js';

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
  /**
   * How long start-up waits for Redis before failing with CONNECTION_FAILED (with a `spool`: before
   * starting without it, see start.ts). Default 10000 ms.
   */
  connectTimeoutMs?: number | undefined;
  /**
   * Redis Cluster seed nodes (`host:port` strings or `{ host, port }`); the cluster's other nodes
   * are discovered. `username`, `password` and `tls` apply to every node. Default
   * `REDIS_CLUSTER_NODES` (`host:port,host:port`); when set, `url` and `host`/`port` are not used.
   */
  cluster?: Array<string | { host: string; port: number }> | undefined;
  /**
   * Redis Sentinel: the sentinels (`host:port` strings or `{ host, port }`) that name the master of
   * `sentinelName`; the bus connects to that master and, after a failover, to the one they promote.
   * `username`, `password`, `db` and `tls` apply to the master (and `tls` to the sentinels too).
   * Default `REDIS_SENTINELS` (`host:port,host:port`); when set, `url`, `host`/`port` are not used.
   */
  sentinels?: Array<string | { host: string; port: number }> | undefined;
  /** The master's name in the sentinels' configuration (`sentinel monitor <name> ...`). Required with `sentinels`. Default `REDIS_SENTINEL_NAME`. */
  sentinelName?: string | undefined;
  /** ACL user for the sentinels themselves. Default `REDIS_SENTINEL_USERNAME`. */
  sentinelUsername?: string | undefined;
  /** Password of the sentinels themselves (their `requirepass`). Default `REDIS_SENTINEL_PASSWORD`. Never logged. */
  sentinelPassword?: string | undefined;
  /**
   * When a publish resolves. `primary`: once the master stored it; with asynchronous replication a
   * failover can lose what the master had not yet sent to a replica. `replicated`: once
   * `ackReplicas` replicas also have it (WAIT after the append, on the same connection), else it
   * rejects with NotReplicatedError (`NOT_REPLICATED`) after `ackTimeoutMs` (the event is on the
   * master only; publishing it again with the same id is deduplicated). Meanwhile the bus' command
   * connection waits too (acknowledgements, dead letters). Not with `cluster`. Default
   * `AGENTBUS_REDIS_ACKS`, else `primary`.
   */
  acks?: 'primary' | 'replicated' | undefined;
  /** Replicas that must confirm a publish with `acks: 'replicated'`, 1 to 100. Default 1. */
  ackReplicas?: number | undefined;
  /** Longest wait for them, 1 to 60000 ms. Default 1000 ms. */
  ackTimeoutMs?: number | undefined;
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
  /**
   * Opt-in spool: while Redis is unreachable, publishes are written to a local SQLite file and
   * resolve (publishDetailed: `spooled: true`); a forwarder sends them on, in order per topic and
   * with their ids, once it is back (see SpoolOptions and the README, "Spool when Redis is down").
   * `false`: no spool whatever `AGENTBUS_SPOOL_PATH` says (the CLI's commands other than `start`:
   * they must not spool, nor take the spool of the host they run beside). Not with `cluster`.
   * With a spool, a Redis unreachable at start (connection refused, no answer within
   * `connectTimeoutMs`) does not fail createRedisBus: the bus starts spooling and runs the start
   * checks once Redis answers (start.ts says what waits and what fails meanwhile); Redis refusing
   * the connection (a wrong password) still fails it.
   * Default `AGENTBUS_SPOOL_PATH` (as `{ path }`), else none.
   */
  spool?: SpoolOptions | false | undefined;
}

const OWN_KEYS = [
  'url', 'host', 'port', 'username', 'password', 'db', 'tls', 'prefix', 'connectTimeoutMs', 'cluster', 'sentinels', 'sentinelName', 'sentinelUsername', 'sentinelPassword',
  'acks', 'ackReplicas', 'ackTimeoutMs', 'client', 'allowEvictionPolicy', 'layout', 'spool',
];
const COMMON_KEYS = BUS_OPTION_KEYS;

/**
 * Connects (failing within `connectTimeoutMs` when Redis is unreachable, unless the bus has a
 * spool) and returns a Redis Streams bus.
 */
export async function createRedisBus(options: RedisBusOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<Bus> {
  knownKeys('redis', options, [...OWN_KEYS, ...COMMON_KEYS]);
  const { url, host, port, username, password, db, tls, prefix = 'events:', connectTimeoutMs, cluster, client, allowEvictionPolicy, layout, ...rest } = options;
  const { sentinels, sentinelName, sentinelUsername, sentinelPassword, acks, ackReplicas, ackTimeoutMs, spool, ...common } = rest;
  const resolved = resolveBusOptions(common);
  const spooling = resolveSpoolOptions(spool, env);
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
  const sentinelList = env.REDIS_SENTINELS ? env.REDIS_SENTINELS.split(',').map((s) => s.trim()).filter(Boolean) : [];
  const watchers = sentinels ?? (sentinelList.length ? sentinelList : undefined);
  const sentinelSecret = sentinelPassword ?? (env.REDIS_SENTINEL_PASSWORD || undefined);
  // Every password in play, in every form, is scrubbed from what the bus logs or throws.
  let scrub = scrubber([password, env.REDIS_PASSWORD, sentinelSecret, ...(target ? urlPasswords(target) : [])]);
  const replicated = replicatedAcks(acks ?? (env.AGENTBUS_REDIS_ACKS || undefined), ackReplicas, ackTimeoutMs);
  if (replicated && (seeds || (client as Cluster | undefined)?.isCluster)) {
    throw invalid('INVALID_OPTION', "acks 'replicated' is not supported with a Redis Cluster (cluster, REDIS_CLUSTER_NODES): use it with one master and its replicas (Sentinel)");
  }
  if (spooling && (seeds || (client as Cluster | undefined)?.isCluster)) {
    throw invalid('INVALID_OPTION', 'spool is not supported with a Redis Cluster (cluster, REDIS_CLUSTER_NODES): use it with one Redis or Sentinel');
  }
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
  } else if (watchers) {
    const parsed = watchers.map((n) => hostPort('sentinel', n, scrub));
    const name = sentinelName ?? (env.REDIS_SENTINEL_NAME || undefined);
    if (typeof name !== 'string' || name === '') {
      throw invalid('INVALID_OPTION', `invalid sentinelName ${scrub(JSON.stringify(name))} (sentinelName, REDIS_SENTINEL_NAME): expected the master's name the sentinels monitor`);
    }
    if (db !== undefined) int('db', db, 0, 0, MAX_DB);
    const so: RedisOptions = {
      ...base,
      sentinels: parsed,
      name,
      username: username ?? (env.REDIS_USERNAME || undefined),
      password: password ?? (env.REDIS_PASSWORD || undefined),
      db: db ?? (env.REDIS_DB ? dbNumber(`REDIS_DB ${JSON.stringify(env.REDIS_DB)}`, env.REDIS_DB) : 0),
      sentinelUsername: sentinelUsername ?? (env.REDIS_SENTINEL_USERNAME || undefined),
      sentinelPassword: sentinelSecret,
      // Each reconnect asks the sentinels again, so it finds a promoted master. A master demoted while
      // still up answers writes with READONLY: reconnect then (and resend the refused command, which
      // wrote nothing). Not ioredis' failoverDetector: its +switch-master can end a reconnect under
      // way for good (the client then refuses every command with "Connection is closed").
      sentinelRetryStrategy: (times: number) => Math.min(2000, 50 * 2 ** Math.min(times, 6)),
      reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 2 : false),
      ...(tls ? { tls, enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    };
    redis = new Redis(so);
    const user = username ?? (env.REDIS_USERNAME || undefined);
    where = `sentinel ${tls ? 'rediss' : 'redis'}://${user ? `${user}@` : ''}${name} via ${parsed.map((n) => `${n.host}:${n.port}`).join(',')}/${(redis as Redis).options.db ?? 0}`;
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
  defineAllScripts(redis);
  const watch = (downSince: number | null) => watchConnection(redis, log, 'redis connection', (err) => ({ redis: where, connection: 'command', err: scrub(err.message) }), downSince);
  // With a spool, a Redis unreachable at start is an outage like any later one: the bus starts
  // (start.ts), its start warning standing for the outage's first one.
  if (!spooling) watch(null);
  const unreachable = client ? null : await tryConnect(redis, where, timeout, scrub, spooling !== null);
  if (spooling) watch(unreachable ? Date.now() : null);
  let gate: StartGate | null = null;
  let health: StoreHealth;
  if (unreachable) {
    const g = (gate = new StartGate({ client: redis as Redis, where, reach: () => reach(redis, where, scrub), allowEvictionPolicy: allowEviction, log, scrub, cause: unreachable.cause as Error }));
    health = new StoreHealth(redis, allowEviction, log, () => g.open);
    log.warn(
      { redis: where, err: (unreachable.cause as Error).message, spool: spooling!.path },
      `${unreachable.message}: starting anyway, with the spool: publishes are spooled and forwarded once Redis answers and passes the start checks; until then subscriptions start when it does and other calls that need Redis fail with CONNECTION_FAILED`,
    );
  } else {
    health = await checkServer(redis, { allowEvictionPolicy: allowEviction }, log).catch((err) => {
      if (!client) redis.disconnect();
      throw err;
    });
  }
  const keys = new Keys(prefix);
  // The spool's module is loaded only when asked for: it brings better-sqlite3.
  const spoolMod = spooling ? await import('./spool/index.js') : null;
  const publishConn = spoolMod && spooling ? spoolMod.publishConnection(redis as Redis, spooling.timeoutMs + (replicated?.timeoutMs ?? 0)) : null;
  if (publishConn && unreachable) {
    publishConn.connect().catch(() => {}); // it reconnects by itself, as the command connection does
  } else if (publishConn) {
    try {
      await connect(publishConn, where, timeout, scrub);
    } catch (err) {
      if (!client) redis.disconnect();
      throw err;
    }
  }
  const driver = health.guard(new RedisDriver(redis, keys, log, client === undefined, (err) => ({ redis: where, err: scrub(err.message) }), layouts, replicated, publishConn));
  new RedisPressure(redis, keys, health).watch(driver);
  gate?.guard(driver);
  let busSpool = null;
  if (spoolMod && spooling && publishConn) {
    try {
      busSpool = spoolMod.openSpool(spooling, publishConn, (entries, has) => driver.log.append(entries, has), resolved.dedupWindowMs, log);
    } catch (err) {
      await driver.close();
      throw err;
    }
  }
  if (gate && busSpool) {
    const s = busSpool;
    s.unreachableAtStart();
    gate.onSettled(() => s.opened());
  }
  // Info through a logger the caller passed (agentbus start passes its own); the default logger keeps it at debug.
  log[common.logger ? 'info' : 'debug']({ store: 'redis', redis: where, prefix, ...(busSpool ? { spool: busSpool.stats().path } : {}) }, `store: Redis at ${where}`);
  const bus = busFromDriver(driver, { ...common, logger: log }, busSpool);
  if (!gate) return bus;
  gate.start();
  return gate.wrap(bus);
}

/** `host:port` or `{ host, port }`, checked, for the Cluster constructor. */
function clusterNode(n: string | { host: string; port: number }, scrub: (s: string) => string): { host: string; port: number } {
  return hostPort('cluster node', n, scrub);
}

/** `host:port` or `{ host, port }` of a cluster node or a sentinel, checked. */
function hostPort(what: string, n: string | { host: string; port: number }, scrub: (s: string) => string): { host: string; port: number } {
  const [host, port] = typeof n === 'string' ? [n.slice(0, n.lastIndexOf(':')), Number(n.slice(n.lastIndexOf(':') + 1))] : [n?.host, n?.port];
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid('INVALID_OPTION', `invalid ${what} ${scrub(JSON.stringify(n))}: expected host:port or { host, port }`);
  }
  return { host, port };
}

/** The `acks` options checked: null for `primary`, the WAIT arguments for `replicated`. */
function replicatedAcks(acks: unknown, replicas: number | undefined, timeoutMs: number | undefined): ReplicatedAcks | null {
  if (acks !== undefined && acks !== 'primary' && acks !== 'replicated') {
    throw invalid('INVALID_OPTION', `invalid acks ${JSON.stringify(acks)} (acks, AGENTBUS_REDIS_ACKS): expected 'primary' or 'replicated'`);
  }
  const n = int('ackReplicas', replicas, 1, 1, 100);
  const ms = int('ackTimeoutMs', timeoutMs, 1000, 1, 60_000);
  return acks === 'replicated' ? { replicas: n, timeoutMs: ms } : null;
}

/** Connects (see tryConnect), or rejects with CONNECTION_FAILED. */
async function connect(redis: Redis | Cluster, where: string, timeoutMs: number, scrub: (s: string) => string): Promise<void> {
  await tryConnect(redis, where, timeoutMs, scrub, false);
}

/**
 * Connects and checks the connection answers, then that the database was selected (reach);
 * resolves null once it did. `keepTrying`: when Redis is unreachable (connection refused or
 * closed, an unknown host, no answer within `timeoutMs`; not a reply refusing us, such as
 * WRONGPASS), leaves the client reconnecting by itself and resolves the CONNECTION_FAILED saying
 * so. Any other failure disconnects the client and rejects with CONNECTION_FAILED.
 */
async function tryConnect(redis: Redis | Cluster, where: string, timeoutMs: number, scrub: (s: string) => string, keepTrying: boolean): Promise<ConnectionError | null> {
  let timer: NodeJS.Timeout | undefined;
  // ioredis rejects connect() with "Connection is closed." and emits the reason (ECONNREFUSED, WRONGPASS) as an error event.
  const seen: Error[] = [];
  const onError = (err: Error) => void seen.push(err);
  redis.on('error', onError);
  // A client given up on keeps the listener: a late error of its socket (a TLS handshake cut short) is then no unhandled 'error'.
  let givenUp = false;
  try {
    await Promise.race([
      (async () => {
        await redis.connect();
        await reach(redis, where, scrub);
      })(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs))),
    ]);
    return null;
  } catch (err) {
    givenUp = true;
    if (err instanceof ConnectionError) {
      redis.disconnect();
      throw err; // reach's refused SELECT
    }
    const thrown = err as Error;
    const e = /^Connection is closed/.test(thrown.message) && seen.length > 0 ? seen[seen.length - 1]! : thrown;
    // The cause keeps the name, code and the scrubbed message only: ioredis errors carry the failed
    // command's arguments (AUTH's are the password).
    const code = (e as { code?: unknown }).code;
    const cause = Object.assign(new Error(scrub(e.message)), { name: e.name }, typeof code === 'string' ? { code } : {});
    const error = new ConnectionError('CONNECTION_FAILED', failedConnecting(where, scrub(e.message)), { cause });
    if (keepTrying && isUnreachable(thrown) && seen.every(isUnreachable)) {
      givenUp = false;
      return error;
    }
    redis.disconnect();
    throw error;
  } finally {
    clearTimeout(timer);
    if (!givenUp) redis.off('error', onError);
  }
}

/**
 * Why a connection failed, for the operator: a reply refusing the credentials or a command (it
 * reached Redis: "cannot reach" would send the operator to the network), or unreachable.
 */
function failedConnecting(where: string, message: string): string {
  if (refusal(message)) return `Redis at ${where} refused the credentials (${message}): check REDIS_USERNAME / REDIS_PASSWORD, or the user and password in REDIS_URL`;
  if (/^NOPERM\b/.test(message)) return `Redis at ${where} denied a command to this user (${message}): check the ACL rules of this user (agentbus runs stream, hash, set, sorted set, script and server commands)`;
  return `cannot reach Redis at ${where}: ${message}`;
}

/** A reply refusing the client's credentials. */
const refusal = (message: string): boolean => /^(WRONGPASS|NOAUTH)\b/.test(message) || /invalid (password|username)/i.test(message);

/**
 * Checks the connection answers, then that the database was selected: ioredis reports a refused
 * SELECT as an error event and goes on in database 0 (a CONNECTION_FAILED naming the database).
 */
async function reach(redis: Redis | Cluster, where: string, scrub: (s: string) => string): Promise<void> {
  const db = (redis as Cluster).isCluster ? 0 : ((redis as Redis).options.db ?? 0);
  await redis.ping();
  if (db === 0) return;
  try {
    await (redis as Redis).select(db);
  } catch (err) {
    const e = err as Error;
    if (isUnreachable(e)) throw e;
    throw new ConnectionError('CONNECTION_FAILED', `cannot select database ${db} on ${where}: ${scrub(e.message)}`, { cause: Object.assign(new Error(scrub(e.message)), { name: e.name }) });
  }
}
