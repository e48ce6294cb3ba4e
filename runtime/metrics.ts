import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BusObserver, DeliveryOutcome, StoreHealth, TopicStats } from '../bus/contract.js';
import type { KeyedStats } from '../bus/contract-delivery.js';
import { LIFECYCLE_STATES, type LifecycleState } from './lifecycle.js';
import type { SpoolStats } from '../bus/spool.js';
import { spoolMetrics } from './spool-metrics.js';
import { busMetrics } from './metrics-bus.js';
import { settlesBy } from '../bus/closing.js';

/** Store gauges come from one bus.stats() per scrape, reused for this long after it answered. */
const STATS_TTL_MS = 1000;
/**
 * A scrape waits this long for the store; past it (a store outage: reads wait for a reconnect) it
 * serves the last values read, marked by agentbus_store_up 0 and their age, and answers at once.
 */
export const STORE_WAIT_MS = 1000;

/** A keyed subscription whose figures the metrics read at scrape time (Subscription.keyedStats). */
export interface KeyedSource {
  keyedStats(): KeyedStats | null;
}

/** KeyedStats' counts, each exported as `agentbus_keyed_<name>_total{agent}` (`name` when given, else the count's). */
const KEYED_COUNTS = {
  loads: { help: 'Keys loaded from the store (first event of a key, or after an eviction or a takeover)' },
  evictions: { help: 'Keys passivated past maxActiveKeys' },
  conflicts: { help: "Keys whose stored state changed outside this host's owner at a commit (state rm, a lost lease)" },
  commits: { help: 'Commits of state and acknowledgements stored' },
  takeovers: { help: "Times one of this host's consumers took the agent's group" },
  duplicates: { help: 'Deliveries found already applied and acknowledged without running the handler' },
  waitsResumed: { name: 'waits_resumed', help: 'Durable waits (ctx.waitFor) that returned a matching event (a handler run again after a takeover counts its recorded match again)' },
  waitsTimedOut: { name: 'waits_timed_out', help: 'Durable waits (ctx.waitFor) whose deadline passed with no match (WaitTimeoutError)' },
  stepsReplayed: { name: 'steps_replayed', help: 'Durable steps (ctx.step) that returned the result an earlier run of their handler recorded, without calling their function' },
  requestsReplayed: { name: 'requests_replayed', help: 'Durable requests (keyed ctx.request) that returned the reply recorded for an earlier run of their handler, without asking again' },
} as const satisfies Partial<Record<keyof KeyedStats, { name?: string; help: string }>>;
type KeyedCount = keyof typeof KEYED_COUNTS;
/** The per-agent gauges of one scrape. */
type KeyedGauges = { owner: number; activeKeys: number; stateBytes: number; waiting: number };

/** One (type, group)'s outcome metrics: handled deliveries counted here until read, the rest bound children. */
interface BoundOutcomes {
  labels: { type: string; group: string };
  handled: number;
  failed: Counter.Internal;
  retried: Counter.Internal;
  duration: Histogram.Internal<'type' | 'group'>;
}

/**
 * The host's Prometheus metrics (prom-client, one registry per host, so several hosts in one
 * process do not mix). Per delivery: the duration histogram's observation through a bound child,
 * a plain number for a handled one (added to its counter when read), the failure counters' bound
 * children otherwise; store gauges (pending, lag, dead letters) are read from the bus at scrape time.
 */
export class HostMetrics {
  readonly registry = new Registry();
  private readonly published: Counter<'type'>;
  private readonly handled: Counter<'type' | 'group'>;
  private readonly failed: Counter<'type' | 'group'>;
  private readonly retried: Counter<'type' | 'group'>;
  private readonly deadLettered: Counter<'type' | 'group' | 'reason'>;
  private readonly duration: Histogram<'type' | 'group'>;
  private readonly restarts: Counter<'agent'>;
  private readonly timeouts: Counter<'agent'>;
  /** Fed by the bus (Bus.observe) while the host runs: delayed events moved, requests (metrics-bus.ts). */
  readonly busObserver: BusObserver;
  private readonly state: Gauge<'agent' | 'state'>;
  /** The last values the store gave and when (ms); whether the last scrape got an answer in time. */
  private last: { at: number; value: TopicStats[] } | null = null;
  /** The last bus.health() reading (memory, disk, writable, topic sizes), read after the stats. */
  private health: StoreHealth | null = null;
  /** Types published through this host: their topics get topic gauges too. */
  private readonly publishedTypes = new Set<string>();
  private up = 0;
  /** The store read in flight: a scrape during an outage joins it rather than starting another. */
  private reading: Promise<void> | null = null;
  /** This scrape's wait for the store, shared by every store gauge; done = when it finished. */
  private scrape: { done: number | null; wait: Promise<void> } | null = null;
  /** Keyed subscriptions of running agents, each with the counts already added to the counters. */
  private readonly keyedSubs = new Map<KeyedSource, { agent: string; seen: Record<KeyedCount, number> }>();
  /** Agents that ever had a keyed subscription here: their gauges stay (at 0) while none runs. */
  private readonly keyedAgents = new Set<string>();
  private readonly keyedCounters = {} as Record<KeyedCount, Counter<'agent'>>;
  /** The per-agent gauges of this scrape (one read of every subscription, shared by the keyed metrics' collects). */
  private keyedNow: Map<string, KeyedGauges> | null = null;

  constructor(
    private readonly readStats: () => Promise<TopicStats[]>,
    private readonly groups: ReadonlySet<string>,
    /** bus.health, when the bus has it; `topics` are the ones to size. */
    private readonly readHealth?: (topics: string[]) => Promise<StoreHealth>,
    /** bus.spool.stats, when the bus has a spool (spool-metrics.ts). */
    readSpool: () => SpoolStats | null = () => null,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'agentbus_' }); // agentbus_process_*, agentbus_nodejs_*
    this.published = new Counter({ name: 'agentbus_events_published_total', help: 'Events published by agents of this host', labelNames: ['type'], registers });
    // Counted per delivery in `bound`, added to the counter when it is read (a scrape, get()).
    this.handled = new Counter({ name: 'agentbus_events_handled_total', help: 'Deliveries whose handler resolved (acknowledged)', labelNames: ['type', 'group'], registers, collect: () => this.addHandled() });
    this.failed = new Counter({ name: 'agentbus_events_failed_total', help: 'Deliveries whose handler threw', labelNames: ['type', 'group'], registers });
    this.retried = new Counter({ name: 'agentbus_events_retried_total', help: 'Failed deliveries that get another attempt', labelNames: ['type', 'group'], registers });
    this.deadLettered = new Counter({ name: 'agentbus_events_dead_lettered_total', help: 'Events given up on, by reason', labelNames: ['type', 'group', 'reason'], registers });
    this.duration = new Histogram({
      name: 'agentbus_handler_duration_seconds',
      help: 'Handler run time',
      labelNames: ['type', 'group'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers,
    });
    this.restarts = new Counter({ name: 'agentbus_agent_restarts_total', help: 'Restarts of each agent by its supervisor', labelNames: ['agent'], registers });
    this.state = new Gauge({ name: 'agentbus_agent_state', help: 'Lifecycle state of each agent (1 for the current state)', labelNames: ['agent', 'state'], registers });
    this.timeouts = new Counter({ name: 'agentbus_handler_timeouts_total', help: "Handler attempts that ran past the agent's timeoutMs (each also counted as failed)", labelNames: ['agent'], registers });
    for (const agent of groups) this.timeouts.inc({ agent }, 0);
    this.busObserver = busMetrics(this.registry);

    const self = this; // the collect callbacks' own `this` is their gauge
    const storeGauge = (name: string, help: string, pick: (g: TopicStats['groups'][number]) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['type', 'group'],
        registers,
        collect: async function (this: Gauge<'type' | 'group'>) {
          await self.storeRead();
          this.reset();
          for (const t of self.last?.value ?? []) for (const g of t.groups) if (groups.has(g.group)) this.set({ type: t.type, group: g.group }, pick(g));
        },
      });
    storeGauge('agentbus_group_pending', 'Deliveries handed out and not yet acknowledged, per group and topic', (g) => g.pending);
    storeGauge('agentbus_group_lag', 'Events stored and not yet delivered to the group, per topic', (g) => g.lag);
    storeGauge('agentbus_group_dead_letters', 'Dead letters kept for the group, per topic', (g) => g.deadLetters);
    new Gauge({
      name: 'agentbus_store_up',
      help: `1 when the store answered this scrape's stats read within ${STORE_WAIT_MS} ms, else 0 (the group gauges then hold the last values read)`,
      registers,
      collect: async function (this: Gauge) {
        await self.storeRead();
        this.set(self.up);
      },
    });
    new Gauge({
      name: 'agentbus_store_stats_age_seconds',
      help: 'Age of the values the group gauges hold (about 0 when fresh; grows while the store does not answer)',
      registers,
      collect: async function (this: Gauge) {
        await self.storeRead();
        this.reset();
        if (self.last) this.set((Date.now() - self.last.at) / 1000);
      },
    });

    // Store pressure, from the same scrape's read: topic sizes, Redis memory per master, SQLite disk.
    const healthGauge = <L extends string>(name: string, help: string, labelNames: L[], fill: (g: Gauge<L>, h: StoreHealth) => void) =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers,
        collect: async function (this: Gauge<L>) {
          await self.storeRead();
          this.reset();
          if (self.health) fill(this, self.health);
        },
      });
    new Gauge({
      name: 'agentbus_topic_length',
      help: "Events stored per topic (topics this host's agents consume or publish)",
      labelNames: ['type'],
      registers,
      collect: async function (this: Gauge<'type'>) {
        await self.storeRead();
        this.reset();
        for (const t of self.last?.value ?? []) if (self.watched(t)) this.set({ type: t.type }, t.length);
      },
    });
    new Gauge({
      name: 'agentbus_due_events',
      help: "Delayed events stored and not yet due, per topic (topics this host's agents consume or publish)",
      labelNames: ['type'],
      registers,
      collect: async function (this: Gauge<'type'>) {
        await self.storeRead();
        this.reset();
        for (const t of self.last?.value ?? []) if (self.watched(t) && t.due !== undefined) this.set({ type: t.type }, t.due);
      },
    });
    healthGauge('agentbus_topic_bytes', 'Approximate bytes per topic (Redis MEMORY USAGE, SQLite length x mean body size), refreshed at most every 30 s', ['type'], (g, h) => {
      for (const t of h.topics) g.set({ type: t.type }, t.bytes);
    });
    healthGauge('agentbus_store_writable', '1 while the store accepts writes, 0 while it refuses them (/readyz says why)', [], (g, h) => g.set(h.refused === null ? 1 : 0));
    const perNode = (name: string, help: string, pick: (m: NonNullable<StoreHealth['memory']>[number]) => number | null) =>
      healthGauge(name, help, ['node'], (g, h) => {
        for (const m of h.memory ?? []) {
          const v = pick(m);
          if (v !== null) g.set({ node: m.node }, v);
        }
      });
    perNode('agentbus_redis_used_memory_bytes', 'Redis used_memory, per master', (m) => m.usedBytes);
    perNode('agentbus_redis_maxmemory_bytes', 'Redis maxmemory, per master (0: no limit)', (m) => m.maxBytes);
    perNode('agentbus_redis_memory_ratio', 'used_memory / maxmemory per master (absent without a limit); a warning is logged past 0.8', (m) => (m.maxBytes > 0 ? m.usedBytes / m.maxBytes : null));
    perNode('agentbus_redis_evicted_keys', 'Redis evicted_keys since the server started, per master (a counter of the server)', (m) => m.evictedKeys);
    const disk = (name: string, help: string, pick: (d: NonNullable<StoreHealth['disk']>) => number) =>
      healthGauge(name, help, [], (g, h) => {
        if (h.disk) g.set(pick(h.disk));
      });
    disk('agentbus_sqlite_file_bytes', 'Size of the SQLite database file', (d) => d.fileBytes);
    disk('agentbus_sqlite_wal_bytes', 'Size of its WAL file (a warning is logged past walWarnBytes)', (d) => d.walBytes);
    disk('agentbus_sqlite_disk_free_bytes', 'Free bytes of the file system under the database file', (d) => d.freeBytes);
    disk('agentbus_sqlite_disk_total_bytes', 'Size of that file system', (d) => d.totalBytes);
    spoolMetrics(this.registry, readSpool);

    // Keyed agents, from their subscriptions in this process (no store read): per agent, summed over its replicas.
    const keyedGauge = (name: string, help: string, pick: (g: KeyedGauges) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['agent'],
        registers,
        collect: function (this: Gauge<'agent'>) {
          this.reset();
          for (const [agent, g] of self.keyedRead()) this.set({ agent }, pick(g));
        },
      });
    keyedGauge('agentbus_keyed_owner', "1 while one of this host's consumers owns the keyed agent's group (runs its keys), 0 while standing by", (g) => g.owner);
    keyedGauge('agentbus_keyed_active_keys', 'Keys whose state this host holds in memory', (g) => g.activeKeys);
    keyedGauge('agentbus_keyed_state_bytes', 'Size as JSON of the states this host holds in memory', (g) => g.stateBytes);
    keyedGauge('agentbus_keyed_waiting', "Handlers of the agent parked in a durable wait (ctx.waitFor) on this host now", (g) => g.waiting);
    for (const [count, c] of Object.entries(KEYED_COUNTS) as Array<[KeyedCount, { name?: string; help: string }]>) {
      this.keyedCounters[count] = new Counter({ name: `agentbus_keyed_${c.name ?? count}_total`, help: c.help, labelNames: ['agent'], registers, collect: () => void self.keyedRead() });
    }
  }

  /**
   * Watches a keyed subscription of `agent` until the returned function is called (after it
   * closed: its last counts are added then, so a restart loses none).
   */
  watchKeyed(agent: string, sub: KeyedSource): () => void {
    this.keyedAgents.add(agent);
    for (const c of Object.values(this.keyedCounters)) c.inc({ agent }, 0); // the series exist from the start, at 0
    this.keyedSubs.set(sub, { agent, seen: { loads: 0, evictions: 0, conflicts: 0, commits: 0, takeovers: 0, duplicates: 0, waitsResumed: 0, waitsTimedOut: 0, stepsReplayed: 0, requestsReplayed: 0 } });
    return () => {
      this.tally(sub);
      this.keyedSubs.delete(sub);
    };
  }

  /** Adds what `sub` counted since the last look to the counters; its figures, or null. */
  private tally(sub: KeyedSource): KeyedStats | null {
    const w = this.keyedSubs.get(sub);
    const s = w === undefined ? null : sub.keyedStats();
    if (w === undefined || s === null) return null;
    for (const c of Object.keys(KEYED_COUNTS) as KeyedCount[]) {
      if (s[c] > w.seen[c]) this.keyedCounters[c].inc({ agent: w.agent }, s[c] - w.seen[c]);
      w.seen[c] = s[c];
    }
    return s;
  }

  /**
   * Every keyed subscription read once per scrape: prom-client calls every metric's collect in one
   * synchronous pass, and these collects are synchronous, so the read is kept until the next microtask.
   */
  private keyedRead(): Map<string, KeyedGauges> {
    if (this.keyedNow !== null) return this.keyedNow;
    const now = new Map([...this.keyedAgents].map((a) => [a, { owner: 0, activeKeys: 0, stateBytes: 0, waiting: 0 }]));
    for (const [sub, { agent }] of this.keyedSubs) {
      const s = this.tally(sub);
      const g = now.get(agent)!;
      if (s === null) continue;
      g.owner = Math.max(g.owner, s.owner ? 1 : 0);
      g.activeKeys += s.activeKeys;
      g.stateBytes += s.stateBytes;
      g.waiting += s.waiting;
    }
    this.keyedNow = now;
    queueMicrotask(() => (this.keyedNow = null));
    return now;
  }

  /**
   * One store read per scrape (stats, then health), shared by every store gauge (their collects run together; a
   * synchronous store such as SQLite finishes before the next collect starts, hence the TTL after
   * it finished). Waits at most STORE_WAIT_MS; a read that times out goes on in the background and
   * its values serve a later scrape, which meanwhile starts no second read.
   */
  private storeRead(): Promise<void> {
    const s = this.scrape;
    if (s && (s.done === null || Date.now() - s.done < STATS_TTL_MS)) return s.wait;
    const entry: { done: number | null; wait: Promise<void> } = { done: null, wait: Promise.resolve() };
    this.scrape = entry;
    entry.wait = this.waitForStore().finally(() => (entry.done = Date.now()));
    return entry.wait;
  }

  private async waitForStore(): Promise<void> {
    this.reading ??= this.readStats()
      .then(
        async (value) => {
          this.last = { at: Date.now(), value };
          this.up = 1;
          if (this.readHealth) this.health = await this.readHealth(value.filter((t) => this.watched(t)).map((t) => t.type)).catch(() => this.health);
        },
        () => void (this.up = 0),
      )
      .finally(() => (this.reading = null));
    // The read settles either way (its failure sets up = 0 itself): only a read still running is timed out here.
    if (!(await settlesBy(this.reading, Date.now() + STORE_WAIT_MS))) this.up = 0;
  }

  /** A topic one of this host's groups consumes, or one its agents published to. */
  private watched(t: TopicStats): boolean {
    return this.publishedTypes.has(t.type) || t.groups.some((g) => this.groups.has(g.group));
  }

  /**
   * Per type, then per group: prom-client's bound children, so the hot path hashes no label set
   * and builds no key, and the handled deliveries not yet added to their counter (one add per
   * scrape instead of one per event; addHandled).
   */
  private readonly bound = new Map<string, Map<string, BoundOutcomes>>();

  outcome(o: DeliveryOutcome): void {
    if (o.outcome === 'dead_lettered') return void this.deadLettered.inc({ type: o.type, group: o.group, reason: o.reason ?? 'failed' });
    const b = this.bound.get(o.type)?.get(o.group) ?? this.bind(o.type, o.group);
    b.duration.observe(o.durationMs / 1000);
    if (o.outcome === 'handled') return void b.handled++;
    b.failed.inc();
    if (o.retry) b.retried.inc();
    if (o.timedOut) this.timeouts.inc({ agent: o.group });
  }

  private bind(type: string, group: string): BoundOutcomes {
    const labels = { type, group };
    const b: BoundOutcomes = { labels, handled: 0, failed: this.failed.labels(labels), retried: this.retried.labels(labels), duration: this.duration.labels(labels) };
    let byGroup = this.bound.get(type);
    if (byGroup === undefined) this.bound.set(type, (byGroup = new Map()));
    byGroup.set(group, b);
    return b;
  }

  /** The handled counter's collect: adds what was counted since it was last read. */
  private addHandled(): void {
    for (const byGroup of this.bound.values()) {
      for (const b of byGroup.values()) {
        if (b.handled === 0) continue;
        this.handled.inc(b.labels, b.handled);
        b.handled = 0;
      }
    }
  }

  publish(type: string): void {
    this.published.inc({ type: String(type) });
    this.publishedTypes.add(String(type));
  }

  transition(agent: string, to: LifecycleState): void {
    for (const s of LIFECYCLE_STATES) this.state.set({ agent, state: s }, s === to ? 1 : 0);
    if (to === 'restarting') this.restarts.inc({ agent });
  }
}
