/**
 * The Redis checks as pure functions: what a node's INFO, CONFIG, TIME and CLUSTER INFO answers
 * (NodeFacts) mean for our events, as Findings (ok, info, warn, or fail with the code it is refused
 * with, and the fix). health.ts reads the facts from the servers and acts on the findings.
 */
import { invalid, type ErrorCode } from '../../bus/errors.js';

/** The oldest Redis agentbus runs on: XAUTOCLAIM and XTRIM ... MINID came with 6.2. */
export const MIN_REDIS_VERSION = '6.2.0';
/** Beyond this difference between this host's clock and the Redis `TIME`, a warning (age retention and time bounds mix the two). */
export const MAX_CLOCK_SKEW_MS = 1000;

/**
 * Every agentbus key that carries a TTL: the only keys a `volatile-*` eviction policy can take.
 * test/health.test.ts runs a workload and fails when any other agentbus key has a TTL: a key that
 * matters for delivery must never get one.
 */
export const TTL_KEYS: ReadonlyArray<{ key: string; pattern: RegExp; cost: string }> = [
  {
    key: '{<prefix><type>}:dedup:<sha256 of [source, id]>',
    pattern: /^\{[^{}]*\}:dedup:/,
    cost: 'a publish repeating a caller id inside dedupWindowMs is stored again (a duplicate; no event is lost)',
  },
  {
    key: '<prefix>{agentbus:<group>}:owner',
    pattern: /\{agentbus:[^{}]*\}:owner$/,
    cost: 'a keyed group changes owner early (its deliveries are run by the new owner; the old owner\'s commit is refused, no state is lost)',
  },
  {
    key: '<prefix>{agentbus:<group>}:state:<key> (with stateTtl)',
    pattern: /\{agentbus:[^{}]*\}:state:/,
    cost: 'a keyed agent\'s state with a stateTtl is dropped before its TTL ends (as if it had expired)',
  },
  {
    key: '<prefix>{agentbus:<group>}:wait:<id>',
    pattern: /\{agentbus:[^{}]*\}:wait:/,
    cost: 'a keyed handler run again after a crash while in ctx.waitFor waits anew (a new deadline; an awaited event it had taken is not seen again)',
  },
  {
    key: '<prefix>{agentbus:<group>}:waitkey:<key>',
    pattern: /\{agentbus:[^{}]*\}:waitkey:/,
    cost: 'a key\'s wait and step records are no longer listed by state get / state waits --key nor erased by state rm (they still expire)',
  },
];

export type Status = 'ok' | 'info' | 'warn' | 'fail';

/** One check's outcome. `fail` carries the code it is refused with; `fix` says what to do. */
export interface Finding {
  check: string;
  status: Status;
  result: string;
  fix?: string;
  /** `host:port` of the Redis node the finding is about. */
  node?: string;
  code?: ErrorCode;
}

/** What one node answered; `null` where the command was refused (renamed, ACL) or failed. */
export interface NodeFacts {
  info: Record<string, string> | null;
  config: Record<string, string> | null;
  /** Redis `TIME` minus this host's clock, ms (midpoint of the round trip). */
  skewMs: number | null;
  /** CLUSTER INFO, on a cluster. */
  cluster: Record<string, string> | null;
}

/** `INFO` / `CLUSTER INFO` text as a map of `field: value` (section headers and blank lines dropped). */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** -1, 0 or 1 as `a` is older, the same, or newer than `b` (dotted numbers; missing parts are 0). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((p) => parseInt(p, 10) || 0);
  const pb = b.split('.').map((p) => parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

export function versionFinding(found: string | undefined, min = MIN_REDIS_VERSION): Finding {
  if (!found || !/^\d+\.\d+/.test(found)) return { check: 'version', status: 'warn', result: 'could not read redis_version (INFO refused)', fix: `make sure the server is Redis ${min} or newer` };
  if (compareVersions(found, min) < 0) {
    return { check: 'version', status: 'fail', code: 'UNSUPPORTED_STORE', result: `Redis ${found} is older than ${min}, the oldest agentbus supports`, fix: `upgrade to Redis ${min} or newer (7.0 recommended)` };
  }
  return { check: 'version', status: 'ok', result: `Redis ${found}` };
}

export function replicationFinding(info: Record<string, string> | null): Finding {
  if (!info?.role) return { check: 'role', status: 'warn', result: 'could not read the role (INFO refused)', fix: 'make sure this is a master, not a replica' };
  if (info.role === 'slave' || info.role === 'replica') {
    return {
      check: 'role',
      status: 'fail',
      code: 'UNSUPPORTED_STORE',
      result: `a read-only replica of ${info.master_host}:${info.master_port}`,
      fix: 'connect to the master; to follow failovers pass a Sentinel client (client: new Redis({ sentinels, name }))',
    };
  }
  return { check: 'role', status: 'ok', result: info.role };
}

/** The keys with a TTL, for messages: `{<prefix><type>}:dedup:<sha256 of [source, id]>`. */
const ttlKeyList = () => TTL_KEYS.map((k) => k.key).join(', ');

export function evictionFinding(policy: string | undefined, allow: boolean): Finding {
  const check = 'eviction-policy';
  if (!policy) return { check, status: 'warn', result: 'could not read maxmemory-policy (CONFIG GET and INFO refused)', fix: 'make sure maxmemory-policy is noeviction' };
  if (policy === 'noeviction') return { check, status: 'ok', result: 'noeviction' };
  if (policy.startsWith('allkeys-')) {
    const result = `maxmemory-policy ${policy}: under memory pressure Redis evicts any key, streams, consumer groups and dead letters included, while publishes still succeed`;
    return allow
      ? { check, status: 'warn', result: `${result} (allowed by allowEvictionPolicy / AGENTBUS_ALLOW_EVICTION)`, fix: 'set maxmemory-policy noeviction' }
      : {
          check,
          status: 'fail',
          code: 'UNSAFE_STORE_CONFIG',
          result,
          fix: 'set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf), or accept the loss with allowEvictionPolicy: true / AGENTBUS_ALLOW_EVICTION=1',
        };
  }
  if (policy.startsWith('volatile-')) {
    const costs = TTL_KEYS.map((k) => k.cost).join('; ');
    return { check, status: 'warn', result: `maxmemory-policy ${policy} evicts keys with a TTL only; the agentbus keys with one are ${ttlKeyList()}: evicting one early means ${costs}`, fix: 'set maxmemory-policy noeviction to keep dedup exact' };
  }
  return { check, status: 'warn', result: `unknown maxmemory-policy ${policy}`, fix: 'set maxmemory-policy noeviction' };
}

/**
 * appendonly, appendfsync and RDB snapshots, and what a crash of the Redis server loses with them.
 * Always `info` (a choice of the operator), `warn` only when nothing could be read.
 */
export function durabilityFinding(config: Record<string, string> | null, info: Record<string, string> | null): Finding {
  const check = 'durability';
  const aof = config?.appendonly !== undefined ? config.appendonly === 'yes' : info?.aof_enabled !== undefined ? info.aof_enabled === '1' : undefined;
  if (aof === undefined) return { check, status: 'warn', result: 'could not read the persistence settings (CONFIG GET and INFO refused)', fix: 'check appendonly and appendfsync on the server' };
  const fsync = config?.appendfsync;
  const save = config?.save;
  const rdb = save === undefined ? 'RDB snapshots unknown (CONFIG refused)' : save.trim() === '' ? 'RDB snapshots off' : `RDB snapshots on (save ${save})`;
  const setting = `appendonly ${aof ? 'yes' : 'no'}${aof ? `, appendfsync ${fsync ?? 'unknown (CONFIG refused)'}` : ''}, ${rdb}`;
  let loses: string;
  let fix: string | undefined;
  if (aof && fsync === 'always') loses = 'nothing acknowledged';
  else if (aof && fsync === 'everysec') loses = 'about the last second of writes';
  else if (aof && fsync === 'no') (loses = 'the writes the OS had not flushed yet (up to about 30 s)'), (fix = 'appendfsync everysec');
  else if (aof) loses = 'what appendfsync allows: up to 1 s with everysec, nothing with always';
  else if (save === undefined) (loses = 'everything since the last RDB snapshot, or everything if snapshots are off'), (fix = 'appendonly yes (appendfsync everysec loses at most about 1 s)');
  else if (save.trim() !== '') (loses = 'everything written since the last snapshot'), (fix = 'appendonly yes (appendfsync everysec loses at most about 1 s)');
  else (loses = 'everything: streams, groups and dead letters'), (fix = 'appendonly yes (appendfsync everysec loses at most about 1 s)');
  return { check, status: 'info', result: `${setting}: a Redis crash loses ${loses}`, ...(fix ? { fix } : {}) };
}

export function clockFinding(skewMs: number | null, max = MAX_CLOCK_SKEW_MS): Finding {
  if (skewMs === null) return { check: 'clock', status: 'warn', result: 'could not read the Redis TIME', fix: 'make sure this host and Redis keep time with NTP' };
  const d = `this host's clock is ${Math.abs(Math.round(skewMs))} ms ${skewMs > 0 ? 'behind' : 'ahead of'} Redis`;
  if (Math.abs(skewMs) > max) return { check: 'clock', status: 'warn', result: d, fix: 'sync clocks (NTP): age retention, time bounds of replay and the deadlines of durable requests compare this clock with Redis stream ids' };
  return { check: 'clock', status: 'ok', result: d };
}

export function clusterFinding(info: Record<string, string> | null): Finding {
  if (!info) return { check: 'cluster', status: 'warn', result: 'could not read CLUSTER INFO', fix: 'run CLUSTER INFO on the node' };
  const ok = info.cluster_state === 'ok' && info.cluster_slots_ok === '16384';
  const result = `cluster_state ${info.cluster_state}, ${info.cluster_slots_ok ?? '?'} of 16384 slots ok (${info.cluster_slots_assigned ?? '?'} assigned)`;
  return ok ? { check: 'cluster', status: 'ok', result } : { check: 'cluster', status: 'fail', result, fix: 'assign every slot to a reachable master (redis-cli --cluster check / fix)' };
}

/** Every finding for one node, from what it answered. */
export function nodeFindings(facts: NodeFacts, allow: boolean, cluster: boolean): Finding[] {
  const { info, config } = facts;
  return [
    versionFinding(info?.redis_version),
    replicationFinding(info),
    evictionFinding(config?.['maxmemory-policy'] ?? info?.maxmemory_policy, allow),
    durabilityFinding(config, info),
    clockFinding(facts.skewMs),
    ...(cluster ? [clusterFinding(facts.cluster)] : []),
  ];
}

/** `allowEvictionPolicy`, else `AGENTBUS_ALLOW_EVICTION` (`1` or `true`). */
export function evictionOptIn(option: unknown, env: NodeJS.ProcessEnv): boolean {
  if (option === undefined) return env.AGENTBUS_ALLOW_EVICTION === '1' || env.AGENTBUS_ALLOW_EVICTION === 'true';
  if (typeof option !== 'boolean') throw invalid('INVALID_OPTION', `invalid allowEvictionPolicy ${JSON.stringify(option)}: expected true or false`);
  return option;
}
