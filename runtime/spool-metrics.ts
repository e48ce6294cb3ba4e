/**
 * The spool's metrics (the Redis `spool` option, bus/spool.ts), read from bus.spool.stats() at
 * scrape time (no store read: the spool is a local file whose figures the bus keeps in memory).
 * Exported by every host, at 0 without a spool, so one dashboard fits every deployment.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SpoolStats } from '../bus/spool.js';

export function spoolMetrics(registry: Registry, read: () => SpoolStats | null): void {
  const registers = [registry];
  // The bus counts since it opened; the counters add what it counted since the last scrape.
  const seen = { spooled: 0, forwarded: 0 };
  const counter = (name: string, help: string, key: keyof typeof seen) =>
    new Counter({
      name,
      help,
      registers,
      collect: function (this: Counter) {
        const v = read()?.[key] ?? 0;
        if (v > seen[key]) this.inc(v - seen[key]);
        seen[key] = v;
      },
    });
  counter('agentbus_spool_spooled_total', 'Events written to the spool because Redis was unreachable (or earlier events of their topic were still spooled)', 'spooled');
  counter('agentbus_spool_forwarded_total', 'Spooled events forwarded to Redis and removed from the spool', 'forwarded');
  const gauge = (name: string, help: string, pick: (s: SpoolStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect: function (this: Gauge) {
        const s = read();
        this.set(s ? pick(s) : 0);
      },
    });
  gauge('agentbus_spool_events', 'Events in the spool now, waiting to be forwarded to Redis', (s) => s.events);
  gauge('agentbus_spool_oldest_age_seconds', 'Age of the oldest event in the spool (0 when empty); past the dedup window a repeated forward may store it twice', (s) => s.oldestAgeSeconds ?? 0);
}
