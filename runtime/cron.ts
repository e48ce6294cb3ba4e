/**
 * Cron expressions for `static schedules` (`{ cron, type, tz? }`), parsed here (no dependency):
 *
 * - 5 fields, `minute hour day-of-month month day-of-week`, or 6 with `second` first
 *   (`*\/2 * * * * *`: every 2 seconds). Each field is `*`, a number, a range `a-b`, a step
 *   (`*\/n`, `a-b/n`, `a/n`: from a to the field's end) or a comma list of those. Months may be
 *   JAN-DEC and days SUN-SAT (any case); day-of-week is 0-7, 0 and 7 both Sunday.
 * - Day-of-month and day-of-week: when both are restricted (neither is `*`), a day matching either
 *   fires, as in Vixie cron (`0 0 1 * MON`: the 1st and every Monday); otherwise the other must match.
 * - Times are wall-clock times in `tz`, an IANA time zone, UTC by default. A time a DST change
 *   skips does not fire that day; a time it repeats fires once, at its first occurrence.
 * - No `L`, `W`, `#`, `?` or `@daily`-style macros: refused with INVALID_OPTION, as is anything
 *   else unreadable, naming the field and the value.
 */
import { invalid } from '../bus/errors.js';

export interface Cron {
  /** The expression as given, and its zone: part of each tick's id (runtime/schedules.ts). */
  readonly source: string;
  readonly tz: string;
  readonly second: ReadonlySet<number>;
  readonly minute: ReadonlySet<number>;
  readonly hour: ReadonlySet<number>;
  readonly dom: ReadonlySet<number>;
  readonly month: ReadonlySet<number>;
  /** 0-6, Sunday 0. */
  readonly dow: ReadonlySet<number>;
  /** Either day field is `*`: both must match (the `*` one always does). */
  readonly dayAnd: boolean;
}

const FIELDS = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'], base: 1 },
  { name: 'day-of-week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'], base: 0 },
] as const;

/** A next tick further than this from the last is not looked for: such an expression never fires (`0 0 30 2 *`). */
const HORIZON_MS = 5 * 366 * 86_400_000;

/** Parses `expr` (see the file comment); `where` starts every error message. */
export function parseCron(expr: unknown, tz: unknown, where: string): Cron {
  if (typeof expr !== 'string') throw invalid('INVALID_OPTION', `${where}: cron ${JSON.stringify(expr)} must be a string of 5 or 6 fields`);
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) {
    throw invalid('INVALID_OPTION', `${where}: cron ${JSON.stringify(expr)} has ${parts.length} field(s): expected 5 (minute hour day-of-month month day-of-week) or 6 (second first)`);
  }
  const zone = checkZone(tz, where);
  const all = parts.length === 6 ? parts : ['0', ...parts];
  const sets = all.map((p, i) => field(p, FIELDS[i], expr, where));
  const dow = new Set([...sets[5]].map((d) => d % 7));
  return { source: expr.trim(), tz: zone, second: sets[0], minute: sets[1], hour: sets[2], dom: sets[3], month: sets[4], dow, dayAnd: all[3] === '*' || all[5] === '*' };
}

function checkZone(tz: unknown, where: string): string {
  if (tz === undefined) return 'UTC';
  if (typeof tz === 'string' && tz !== '') {
    try {
      return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
    } catch {
      // refused below
    }
  }
  throw invalid('INVALID_OPTION', `${where}: tz ${JSON.stringify(tz)} is not a time zone: expected an IANA name such as Europe/Paris (default UTC)`);
}

function field(text: string, f: (typeof FIELDS)[number], expr: string, where: string): Set<number> {
  const bad = (why: string) => invalid('INVALID_OPTION', `${where}: cron ${JSON.stringify(expr)}: ${f.name} field ${JSON.stringify(text)} ${why}`);
  const value = (v: string): number => {
    const named = 'names' in f ? (f.names as readonly string[]).indexOf(v.toUpperCase()) : -1;
    const n = named >= 0 ? named + ('base' in f ? f.base : 0) : /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n)) throw bad(`is not a number${'names' in f ? ' or a name' : ''}, a range, a step or a list`);
    if (n < f.min || n > f.max) throw bad(`has ${v}, outside ${f.min}-${f.max}`);
    return n;
  };
  const out = new Set<number>();
  for (const item of text.split(',')) {
    const m = /^([^/]+)(?:\/(\d+))?$/.exec(item);
    if (!m) throw bad('is not a number, a range, a step or a list');
    const step = m[2] === undefined ? 1 : Number(m[2]);
    if (step < 1) throw bad('has a step of 0');
    let lo: number;
    let hi: number;
    if (m[1] === '*') [lo, hi] = [f.min, f.max];
    else if (m[1].includes('-')) {
      const [a, b, ...rest] = m[1].split('-');
      if (rest.length > 0) throw bad('is not a number, a range, a step or a list');
      [lo, hi] = [value(a), value(b)];
      if (lo > hi) throw bad(`has the range ${m[1]} backwards`);
    } else [lo, hi] = [value(m[1]), m[2] === undefined ? value(m[1]) : f.max];
    for (let n = lo; n <= hi; n += step) out.add(n);
  }
  return out;
}

/** The first tick of `c` strictly after `after` (epoch ms), or null when there is none within about five years. */
export function nextTick(c: Cron, after: number): number | null {
  const utc = c.tz === 'UTC';
  let wall = utc ? after : after + offset(c.tz, after);
  const end = wall + HORIZON_MS;
  while (wall < end) {
    const w = nextWall(c, wall, end);
    if (w === null) return null;
    if (utc) return w;
    // The instants showing wall time w: none in a DST gap, two in a repeated hour (the first wins).
    const at = [w - offset(c.tz, w - 86_400_000), w - offset(c.tz, w + 86_400_000)].filter((i) => i > after && i + offset(c.tz, i) === w).sort((a, b) => a - b);
    if (at.length > 0) return at[0];
    wall = w;
  }
  return null;
}

/** The first wall time (ms, read as UTC fields) after `wall` whose fields match, before `end`. */
function nextWall(c: Cron, wall: number, end: number): number | null {
  let t = Math.floor(wall / 1000) * 1000 + 1000;
  while (t < end) {
    const d = new Date(t);
    const [Y, M, D, h, m, s] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
    if (!c.month.has(M + 1)) t = Date.UTC(Y, M + 1, 1);
    else if (!dayMatches(c, D, d.getUTCDay())) t = Date.UTC(Y, M, D + 1);
    else if (!c.hour.has(h)) t = Date.UTC(Y, M, D, h + 1);
    else if (!c.minute.has(m)) t = Date.UTC(Y, M, D, h, m + 1);
    else if (!c.second.has(s)) t = Date.UTC(Y, M, D, h, m, s + 1);
    else return t;
  }
  return null;
}

function dayMatches(c: Cron, dom: number, dow: number): boolean {
  return c.dayAnd ? c.dom.has(dom) && c.dow.has(dow) : c.dom.has(dom) || c.dow.has(dow);
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The zone's offset from UTC at instant `t` (ms; wall time = t + offset), to the second. */
function offset(tz: string, t: number): number {
  let f = formats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formats.set(tz, f);
  }
  const p: Record<string, number> = {};
  for (const x of f.formatToParts(t)) if (x.type !== 'literal') p[x.type] = Number(x.value);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return wall - Math.floor(t / 1000) * 1000;
}
