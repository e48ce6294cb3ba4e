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
 * The lag chart's memory: one bus.stats() every LAG_SAMPLE_MS while someone uses the UI, the last
 * LAG_WINDOW_MS kept. Sampling starts at the first UI request (touch()) and pauses once no request
 * came for LAG_WINDOW_MS, so a host whose UI nobody opens reads nothing more from its store. A read
 * that fails (store down) leaves a gap rather than a zero. The timer is unref'd: it never keeps
 * the process alive; stop() ends it.
 */
export class LagHistory {
  private readonly samples: LagSample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private reading: Promise<void> | null = null;
  private lastTouch = 0;
  private stopped = false;

  constructor(private readonly stats: () => Promise<TopicStats[]>, private readonly everyMs = LAG_SAMPLE_MS) {}

  /** A UI request came: sample now and on, if not already. */
  touch(): void {
    this.lastTouch = Date.now();
    if (this.timer !== null || this.stopped) return;
    void this.sample();
    this.timer = setInterval(() => {
      if (Date.now() - this.lastTouch > LAG_WINDOW_MS) {
        clearInterval(this.timer!);
        this.timer = null;
      } else void this.sample();
    }, this.everyMs);
    this.timer.unref();
  }

  /**
   * Reads now, unless the newest sample is younger than `unlessYoungerMs` (the chart's API asks
   * with 1000, so a fresh page shows the current lag and many open pages do not multiply reads).
   */
  sample(unlessYoungerMs = 0): Promise<void> {
    const newest = this.samples[this.samples.length - 1];
    if (this.reading) return this.reading; // one read at a time: join the one in flight
    if (newest !== undefined && Date.now() - newest.at < unlessYoungerMs) return Promise.resolve();
    this.reading = this.read().finally(() => (this.reading = null));
    return this.reading;
  }

  private async read(): Promise<void> {
    try {
      const stats = await this.stats();
      const series: Record<string, number> = {};
      for (const t of stats) for (const g of t.groups) series[`${g.group} ${t.type}`] = g.lag;
      const at = Date.now();
      this.samples.push({ at, series });
      while (this.samples.length > 0 && this.samples[0]!.at < at - LAG_WINDOW_MS) this.samples.shift();
    } catch {
      // A gap in the chart: the overview and topics pages say what the store answered.
    }
  }

  list(): LagSample[] {
    return [...this.samples];
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
