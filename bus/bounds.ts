// Bounds of a replay or rewind as users give them (a Date, epoch ms, an ISO-8601 time, a position)
// turned into what a Driver takes (StoreBound).
import type { Bound } from './contract.js';
import { MAX_TIME_MS, type StoreBound } from './driver.js';
import { invalid } from './errors.js';

/**
 * A bound given by a user: a Date or epoch ms is a time; a string of digits (SQLite) or
 * `<ms>-<seq>` (Redis) is a position (its range is checked by the driver); any other string must
 * parse as an ISO-8601 time. Times must lie within a Date's range (up to MAX_TIME_MS). `name`
 * (`from`, `to`) names the option in the error.
 */
export function toStoreBound(name: string, b: Bound): StoreBound {
  if (b instanceof Date) {
    if (Number.isNaN(b.getTime())) throw invalid('INVALID_OPTION', `invalid ${name}: an Invalid Date`);
    return { time: b.getTime() };
  }
  if (typeof b === 'number') {
    if (!Number.isInteger(b) || b < 0 || b > MAX_TIME_MS) {
      throw invalid('INVALID_OPTION', `invalid ${name} ${b}: expected epoch milliseconds (an integer from 0 to ${MAX_TIME_MS})`);
    }
    return { time: b };
  }
  if (typeof b === 'string') {
    if (/^\d+(-\d+)?$/.test(b)) return { position: b };
    const t = Date.parse(b);
    if (!Number.isNaN(t)) return { time: t };
  }
  throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(b)}: expected a Date, epoch milliseconds, an ISO-8601 time or a position`);
}

/**
 * A replay's `from`: nothing or `'earliest'` is the oldest stored event (null: no lower bound), as
 * for rewind and subscribe. `'latest'` is refused: a replay hands over events already stored, and
 * from the latest on there are none yet (a subscription from `'latest'` gets the new ones).
 */
export function replayFrom(b: Bound | undefined): StoreBound | null {
  if (b === undefined || b === 'earliest') return null;
  if (b === 'latest') {
    throw invalid('INVALID_OPTION', `invalid replay from "latest": a replay hands over stored events and none lies after the latest; give 'earliest' (or no from) for the oldest stored event, or subscribe with from: 'latest' for new ones`);
  }
  return toStoreBound('from', b);
}
