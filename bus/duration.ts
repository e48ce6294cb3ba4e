// Durations as options take them: milliseconds, or a number and a unit. One parser for reminders,
// schedules, the CLI's --delay and ctx.waitFor's timeout.
import { invalid } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds from a number of them or a number and a unit (`250ms`, `30s`, `5m`, `2h`, `1d`, `1.5h`); null for anything else. */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v) : null;
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim()) : null;
  return m ? Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 'ms']) : null;
}

/** A duration option (see parseDuration), or INVALID_OPTION naming it. */
export function toMs(name: string, v: unknown): number {
  const ms = parseDuration(v);
  if (ms === null) throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected milliseconds or a duration such as 250ms, 30s, 5m, 2h, 1d`);
  return ms;
}
