import type { Logger } from 'pino';
import type { StoreHealth } from './contract.js';
import type { AppendEntry, AppendHas, Driver, DriverLog } from './driver.js';

/** A warning still true is logged again after this long (so a long condition is not silent, nor a flood). */
export const WARN_REPEAT_MS = 5 * 60_000;
/** How often a bus reads its store's health by itself, so warnings are logged without scrapes. */
export const HEALTH_EVERY_MS = 10_000;

/**
 * Wraps a driver's log.append so an adapter's pressure probe hears of each refused write (`failed`, then
 * the error goes on to the publisher) and each stored one (`stored`); returns the unwrapped append,
 * for probes that write themselves. The one place both adapters learn that the store refuses writes.
 */
export function watchAppends(
  driver: Driver,
  on: { failed(err: unknown, entries: AppendEntry[]): void; stored(entries: AppendEntry[]): void },
): DriverLog['append'] {
  const append = driver.log.append.bind(driver.log);
  driver.log.append = async (entries: AppendEntry[], has?: AppendHas) => {
    try {
      await append(entries, has);
    } catch (err) {
      on.failed(err, entries);
      throw err;
    }
    on.stored(entries);
  };
  return append;
}

/** Sizes for people: `512 B`, `3.2 MiB`, `1.4 GiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${v.toFixed(1)} ${units[i]}`;
}

/**
 * Turns health readings into log lines: each warning once, then again every WARN_REPEAT_MS while it
 * holds, and one info line when it clears; a change to or from refusing writes once each way. One
 * per bus; every reading passes through it (scrapes, readiness checks, the bus' own timer).
 */
export class PressureWatch {
  private readonly logged = new Map<string, number>();
  private refused: string | null = null;

  constructor(
    private readonly log: Logger,
    private readonly repeatMs = WARN_REPEAT_MS,
  ) {}

  observe(h: StoreHealth): void {
    const now = Date.now();
    const seen = new Set<string>();
    for (const w of h.warnings) {
      seen.add(w.key);
      const at = this.logged.get(w.key);
      if (at === undefined || now - at >= this.repeatMs) {
        this.log.warn({ pressure: w.key }, w.message);
        this.logged.set(w.key, now);
      }
    }
    for (const key of [...this.logged.keys()]) {
      if (seen.has(key)) continue;
      this.logged.delete(key);
      this.log.info({ pressure: key }, `store pressure cleared: ${key}`);
    }
    if ((h.refused === null) !== (this.refused === null)) {
      if (h.refused !== null) this.log.warn({ pressure: 'refused', reason: h.refused }, `store refuses writes: ${h.refused} (publishes fail; /readyz is 503 until it accepts them)`);
      else this.log.info({ pressure: 'refused' }, 'store accepts writes again');
      this.refused = h.refused;
    }
  }
}
