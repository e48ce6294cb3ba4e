/**
 * Redis memory pressure and refused writes, for `bus.health()` (metrics, readiness, warnings).
 * Memory: `INFO memory` and `INFO stats` of every master, per reading (two small commands a node).
 * Topic sizes: `MEMORY USAGE <stream> SAMPLES 5`, cached, refreshed at most every 30 s for at most
 * 50 topics (the next 50 on the next refresh), never a scan per scrape.
 */
import type { Cluster, Redis } from 'ioredis';
import type { StoreHealth } from '../../bus/contract.js';
import type { Driver, DriverLog } from '../../bus/driver.js';
import { ConfigurationError } from '../../bus/errors.js';
import { formatBytes, watchAppends } from '../../bus/pressure.js';
import type { Keys } from './keys.js';
import { label, masters, readInfo, type StoreHealth as PolicyWatch } from './health.js';

/** Used memory past this share of `maxmemory` is a warning. */
export const MEMORY_WARN_RATIO = 0.8;
/**
 * After an OOM refusal the store counts as taking writes again only once every master is back under
 * this share of its maxmemory (or has none): at the very edge, small writes pass and larger ones
 * fail from one moment to the next, and readiness should not flap with them.
 */
export const MEMORY_RECOVER_RATIO = 0.95;
export const TOPIC_SIZE_EVERY_MS = 30_000;
export const TOPIC_SIZE_MAX = 50;
/** MEMORY USAGE samples this many stream nodes and extrapolates: approximate, and cheap on any length. */
const TOPIC_SIZE_SAMPLES = 5;

type Client = Redis | Cluster;

/**
 * The reason an append's error means the store refuses writes, or null for any other error:
 * `OOM` (used memory past maxmemory under noeviction), `READONLY` (a replica, e.g. after a
 * failover), `MISCONF` (RDB snapshots failing with stop-writes-on-bgsave-error), and the
 * UNSAFE_STORE_CONFIG refusal of an allkeys-* policy found after a reconnect.
 */
export function refusalOf(err: unknown): string | null {
  if (err instanceof ConfigurationError) return `${err.code}: ${err.message}`;
  const m = String((err as Error)?.message ?? '');
  return /^(OOM|READONLY|MISCONF)\b/.test(m) ? m : null;
}

export class RedisPressure {
  /** Set by an append refused so; `probe` tells whether the store would take a write now. */
  private refused: { reason: string; topic: string | null } | null = null;
  private readonly sizes = new Map<string, number>();
  private sizedAt = 0;
  private next = 0;

  constructor(
    private readonly client: Client,
    private readonly keys: Keys,
    private readonly policy: PolicyWatch,
  ) {}

  /** Watches the (policy-guarded) driver's appends and gives it `health()`. */
  watch<D extends Driver>(driver: D): D {
    const append = watchAppends(driver, {
      failed: (err, entries) => {
        const reason = refusalOf(err);
        if (reason !== null) this.refused = { reason, topic: entries[0]?.topic ?? null };
      },
      // Past an OOM, one write that fits proves little (see MEMORY_RECOVER_RATIO): health() decides.
      stored: (entries) => {
        if (entries.length > 0 && !this.refused?.reason.startsWith('OOM')) this.refused = null;
      },
    });
    driver.admin.health = (topics) => this.health(topics, append);
    return driver;
  }

  private async health(topics: string[], append: DriverLog['append']): Promise<StoreHealth> {
    const [memory, sized] = await Promise.all([this.memory(), this.topicSizes(topics)]);
    const refused = await this.probe(append, memory);
    const warnings: StoreHealth['warnings'] = [];
    for (const m of memory) {
      if (m.maxBytes > 0 && m.usedBytes >= MEMORY_WARN_RATIO * m.maxBytes) {
        warnings.push({
          key: `redis-memory:${m.node}`,
          message:
            `Redis ${m.node} uses ${formatBytes(m.usedBytes)} of maxmemory ${formatBytes(m.maxBytes)} (${Math.round((100 * m.usedBytes) / m.maxBytes)}%, past ${MEMORY_WARN_RATIO * 100}%): ` +
            `${consequence(m.policy)}; drain lagging groups, set retention, or raise maxmemory`,
        });
      }
    }
    return { refused, warnings, memory, topics: sized };
  }

  /**
   * While refused, whether a write would be taken now. The policy refusal re-reads the policy (an
   * empty append through the guard, at most once a second); OOM, READONLY and MISCONF are probed
   * with `XADD <{stream}:probe> NOMKSTREAM`: a write command, refused exactly as a publish would be
   * (on the master of the topic that failed), that creates nothing, since that key never exists;
   * after an OOM, every master must also be under MEMORY_RECOVER_RATIO of its maxmemory.
   */
  private async probe(append: DriverLog['append'], memory: NonNullable<StoreHealth['memory']>): Promise<string | null> {
    if (this.refused === null && this.policy.refusal === null) return null;
    try {
      await append([]);
      if (this.refused?.topic != null) await this.client.xadd(`{${this.keys.stream(this.refused.topic)}}:probe`, 'NOMKSTREAM', '*', 'p', '1');
      const full = memory.find((m) => m.maxBytes > 0 && m.usedBytes >= MEMORY_RECOVER_RATIO * m.maxBytes);
      if (this.refused?.reason.startsWith('OOM') && full) {
        return `${this.refused.reason} (${full.node}: ${formatBytes(full.usedBytes)} used of ${formatBytes(full.maxBytes)}; ready again under ${MEMORY_RECOVER_RATIO * 100}%)`;
      }
      this.refused = null;
      return null;
    } catch (err) {
      const reason = refusalOf(err);
      if (reason !== null) this.refused = { reason, topic: this.refused?.topic ?? null };
      return this.refused?.reason ?? null; // unreachable meanwhile: the last refusal holds
    }
  }

  private async memory(): Promise<NonNullable<StoreHealth['memory']>> {
    const out = await Promise.all(
      masters(this.client).map(async (node) => {
        const [mem, stats] = await Promise.all([readInfo(node, 'memory'), readInfo(node, 'stats')]);
        if (!mem?.used_memory) return null; // INFO refused (ACL, renamed)
        return {
          node: label(node),
          usedBytes: Number(mem.used_memory),
          maxBytes: Number(mem.maxmemory ?? 0),
          policy: mem.maxmemory_policy ?? 'unknown',
          evictedKeys: Number(stats?.evicted_keys ?? 0),
        };
      }),
    );
    return out.filter((m) => m !== null);
  }

  /** Cached sizes of `topics`; at most every TOPIC_SIZE_EVERY_MS, the next TOPIC_SIZE_MAX of them are measured. */
  private async topicSizes(topics: string[]): Promise<StoreHealth['topics']> {
    if (topics.length > 0 && Date.now() - this.sizedAt >= TOPIC_SIZE_EVERY_MS) {
      this.sizedAt = Date.now();
      const wanted = new Set(topics);
      for (const t of this.sizes.keys()) if (!wanted.has(t)) this.sizes.delete(t);
      const start = this.next % topics.length;
      const batch = [...topics.slice(start), ...topics.slice(0, start)].slice(0, TOPIC_SIZE_MAX);
      this.next = start + batch.length;
      await Promise.all(
        batch.map((t) =>
          (this.client.memory('USAGE', this.keys.stream(t), 'SAMPLES', TOPIC_SIZE_SAMPLES) as Promise<number | null>).then(
            (n) => void this.sizes.set(t, Number(n ?? 0)),
            () => {}, // MEMORY refused (ACL): no size
          ),
        ),
      );
    }
    return topics.filter((t) => this.sizes.has(t)).map((t) => ({ type: t, bytes: this.sizes.get(t)! }));
  }
}

function consequence(policy: string): string {
  if (policy === 'noeviction') return 'with noeviction, at maxmemory every publish fails with OOM (nothing stored is lost)';
  if (policy.startsWith('volatile-')) return `with ${policy}, dedup markers are evicted first, then publishes fail with OOM`;
  if (policy.startsWith('allkeys-')) return `with ${policy}, Redis will evict streams, groups and dead letters: events are lost`;
  return `maxmemory-policy ${policy}`;
}
