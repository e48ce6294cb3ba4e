import type { TopicStats } from '../../bus/contract.js';

/** One reading of every group's lag: `series` maps `<group> <type>` to the events it has not yet been handed. */
export interface LagSample {
  at: number;
  series: Record<string, number>;
}

/** How often the admin UI reads bus.stats() for its lag chart. */
export const LAG_SAMPLE_MS = 5000;
/** How far back the chart goes: 15 minutes of samples, kept in memory by the server (nothing stored). */
export const LAG_WINDOW_MS = 15 * 60_000;

/**
 * The lag chart's memory: one bus.stats() every LAG_SAMPLE_MS while the UI is served, the last
 * LAG_WINDOW_MS kept. A read that fails (store down) leaves a gap rather than a zero. The timer is
 * unref'd: it never keeps the process alive; stop() ends it.
 */
export class LagHistory {
  private readonly samples: LagSample[] = [];
  private readonly timer: NodeJS.Timeout;
  private reading = false;

  constructor(private readonly stats: () => Promise<TopicStats[]>, everyMs = LAG_SAMPLE_MS) {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), everyMs);
    this.timer.unref();
  }

  /**
   * Reads now, unless the newest sample is younger than `unlessYoungerMs` (the chart's API asks
   * with 1000, so a fresh page shows the current lag and many open pages do not multiply reads).
   */
  async sample(unlessYoungerMs = 0): Promise<void> {
    const newest = this.samples[this.samples.length - 1];
    if (this.reading || (newest !== undefined && Date.now() - newest.at < unlessYoungerMs)) return;
    this.reading = true;
    try {
      const stats = await this.stats();
      const series: Record<string, number> = {};
      for (const t of stats) for (const g of t.groups) series[`${g.group} ${t.type}`] = g.lag;
      const at = Date.now();
      this.samples.push({ at, series });
      while (this.samples.length > 0 && this.samples[0]!.at < at - LAG_WINDOW_MS) this.samples.shift();
    } catch {
      // A gap in the chart: the overview and topics pages say what the store answered.
    } finally {
      this.reading = false;
    }
  }

  list(): LagSample[] {
    return [...this.samples];
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
