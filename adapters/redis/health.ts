/**
 * What the Redis a bus connects to is set up to do with our events: checked at connect (and the
 * eviction policy again on every reconnect). A setting that silently loses events is refused; one
 * that can cost something smaller is a warning; durability is reported. `agentbus doctor` shows the
 * same findings as a table (it reads them from the log records written here). This file reads the
 * facts from each master and acts on the findings; what the facts mean is findings.ts.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AppendEntry, AppendHas, Driver } from '../../bus/driver.js';
import { ConfigurationError } from '../../bus/errors.js';
import { errForLog } from '../../bus/thrown.js';
import { evictionFinding, nodeFindings, parseInfo, type Finding, type NodeFacts } from './findings.js';

/** While publishes are refused after a reconnect, the policy is read again at most this often (on the next publish). */
const RECHECK_MS = 1000;

type Client = Redis | Cluster;

export const masters = (client: Client): Redis[] => ((client as Cluster).isCluster === true ? (client as Cluster).nodes('master') : [client as Redis]);
/** host:port only: never the options (they hold the password). */
export const label = (node: Redis) => node.options.path ?? `${node.options.host}:${node.options.port}`;

async function readConfig(node: Redis, names: string[]): Promise<Record<string, string> | null> {
  try {
    const out: Record<string, string> = {};
    // One name per CONFIG GET: Redis 6.2 takes only one.
    for (const reply of await Promise.all(names.map((n) => node.call('CONFIG', 'GET', n) as Promise<string[]>))) {
      for (let i = 0; i + 1 < reply.length; i += 2) out[reply[i]] = reply[i + 1];
    }
    return out;
  } catch {
    return null; // CONFIG renamed away (managed Redis) or not allowed to this ACL user
  }
}

export const readInfo = (node: Redis, section?: string) => (section ? node.info(section) : node.info()).then(parseInfo, () => null);

async function gather(node: Redis, cluster: boolean): Promise<NodeFacts> {
  const [info, config] = await Promise.all([readInfo(node), readConfig(node, ['maxmemory-policy', 'appendonly', 'appendfsync', 'save'])]);
  const t0 = Date.now();
  const time = await node.time().catch(() => null);
  const skewMs = time ? Number(time[0]) * 1000 + Number(time[1]) / 1000 - (t0 + Date.now()) / 2 : null;
  const clusterInfo = cluster ? await (node.call('CLUSTER', 'INFO') as Promise<string>).then(parseInfo, () => null) : null;
  return { info, config, skewMs, cluster: clusterInfo };
}

/** Every check on every master (one node, or each master of a cluster). */
export async function inspectServer(client: Client, allow: boolean): Promise<Finding[]> {
  const cluster = (client as Cluster).isCluster === true;
  const perNode = await Promise.all(masters(client).map(async (node) => nodeFindings(await gather(node, cluster), allow, cluster).map((f) => ({ ...f, node: label(node) }))));
  return perNode.flat();
}

/** Just the eviction policy on every master: what a reconnect re-reads. */
async function inspectEviction(client: Client, allow: boolean): Promise<Finding[]> {
  return Promise.all(
    masters(client).map(async (node) => {
      const config = await readConfig(node, ['maxmemory-policy']);
      const policy = config?.['maxmemory-policy'] ?? (await readInfo(node, 'memory'))?.maxmemory_policy;
      return { ...evictionFinding(policy, allow), node: label(node) };
    }),
  );
}

const LEVEL = { ok: 'debug', info: 'info', warn: 'warn', fail: 'error' } as const;

/** One log record per finding: `{ check, status, node, result, fix }`; ok at debug, info, warn, fail at error. */
function report(findings: Finding[], log: Logger): void {
  for (const f of findings) {
    log[LEVEL[f.status]]({ check: f.check, status: f.status, node: f.node, result: f.result, fix: f.fix }, `redis ${f.check}${f.node ? ` (${f.node})` : ''}: ${f.result}${f.fix ? `; ${f.fix}` : ''}`);
  }
}

const refusal = (f: Finding, extra = '') => new ConfigurationError(f.code ?? 'UNSAFE_STORE_CONFIG', `Redis at ${f.node}: ${f.result}${extra}; ${f.fix}`);

/**
 * Runs every check once at connect and logs each finding; throws a ConfigurationError for the first
 * refused one (an allkeys-* policy without opt-in, a replica, a version older than 6.2). Returns
 * the watch that re-reads the eviction policy on every reconnect.
 */
export async function checkServer(client: Client, options: { allowEvictionPolicy: boolean }, log: Logger): Promise<StoreHealth> {
  await startChecks(client, options.allowEvictionPolicy, log);
  return new StoreHealth(client, options.allowEvictionPolicy, log);
}

/**
 * The checks of checkServer without the watch: each finding logged, a ConfigurationError thrown
 * for the first refused one. A bus started while Redis was unreachable (start.ts) runs them once
 * Redis answers.
 */
export async function startChecks(client: Client, allow: boolean, log: Logger): Promise<void> {
  const findings = await inspectServer(client, allow);
  report(findings, log);
  const refused = findings.find((f) => f.status === 'fail');
  if (refused) throw refusal(refused);
}

/**
 * `CONFIG SET` can change the policy of a running server, and a reconnect may reach another one.
 * On every reconnect the policy is read again (a refused or opted-in policy logged once); an
 * allkeys-* policy without opt-in makes every publish fail with that ConfigurationError until the
 * policy is safe again (read again on a publish, at most once a second), then publishing resumes by
 * itself. Publishes made while the reconnect's check is under way wait for it. Consumers go on:
 * reading and acknowledging what is stored frees memory.
 */
export class StoreHealth {
  private blocked: ConfigurationError | null = null;
  private checking: Promise<void> | null = null;
  private checkedAt = 0;
  // Until a bus started while Redis was unreachable passed its start checks, those run on a reconnect instead (start.ts).
  private readonly onReady = () => void (this.started() ? this.recheck(true) : undefined);

  constructor(
    private readonly client: Client,
    private readonly allow: boolean,
    private readonly log: Logger,
    /** Whether the start checks passed (always, unless the bus started while Redis was unreachable). */
    private readonly started: () => boolean = () => true,
  ) {
    client.on('ready', this.onReady);
  }

  /** The refusal publishes fail with now (an allkeys-* policy found after a reconnect), or null. */
  get refusal(): ConfigurationError | null {
    return this.blocked;
  }

  /** The driver with its log's appends checked first; closing it stops the watch. */
  guard<D extends Pick<Driver, 'log' | 'close'>>(driver: D): D {
    const append = driver.log.append.bind(driver.log);
    const close = driver.close.bind(driver);
    const checked = async (entries: AppendEntry[], has: AppendHas | undefined): Promise<void> => {
      if (this.checking) await this.checking;
      if (this.blocked && Date.now() - this.checkedAt >= RECHECK_MS) await this.recheck(false);
      if (this.blocked) throw this.blocked;
      return append(entries, has);
    };
    // Nothing to wait for or refuse (the common case): the append itself, no async function around it.
    driver.log.append = (entries, has) => (this.checking === null && this.blocked === null ? append(entries, has) : checked(entries, has));
    driver.close = async () => {
      this.client.off('ready', this.onReady);
      return close();
    };
    return driver;
  }

  private recheck(reconnect: boolean): Promise<void> {
    this.checking ??= this.readPolicy(reconnect).finally(() => {
      this.checking = null;
      this.checkedAt = Date.now();
    });
    return this.checking;
  }

  private async readPolicy(reconnect: boolean): Promise<void> {
    let findings: Finding[];
    try {
      findings = await inspectEviction(this.client, this.allow);
    } catch (err) {
      this.log.debug({ err: errForLog(err) }, 'redis eviction-policy: could not be read again (connection lost?)');
      return;
    }
    if (reconnect) report(findings.filter((f) => f.status !== 'ok').map((f) => (f.status === 'fail' ? { ...f, result: `${f.result} (found after a reconnect: publishes fail until it is fixed)` } : f)), this.log);
    const refused = findings.find((f) => f.status === 'fail');
    if (refused) this.blocked = refusal(refused, ' (found after a reconnect: publishes fail until it is fixed)');
    else if (this.blocked) {
      this.blocked = null;
      this.log.info({ check: 'eviction-policy', status: 'ok' }, 'redis eviction-policy: safe again, publishing resumes');
    }
  }
}
