// bus.schedules: the store's pending delayed events, listed, cancelled by name and removed by id,
// with the arguments checked at the call (the driver's half: DriverDue in driver.ts).
import type { Schedules } from './contract.js';
import type { DriverDue } from './driver.js';
import { checkType, MAX_ID_LENGTH, MAX_SOURCE_LENGTH } from './event.js';
import { invalid } from './errors.js';
import { DEDUP_WINDOW_MS } from './options.js';
import { checkDueName } from './publish.js';
import { int, knownKeys } from './validate.js';

const LIST_KEYS = ['type', 'limit'];
const CANCEL_KEYS = ['id', 'source', 'dedupWindowMs'];

/** `source`: the bus' own (a cancel's dedup id is scoped by source, as a publish's). */
export function schedulesOf(due: DriverDue, o: { source: string; dedupWindowMs: number; maxPayloadBytes: number }): Schedules {
  return {
    list: async (filter = {}) => {
      if (filter === null || typeof filter !== 'object') throw invalid('INVALID_OPTION', `schedules list filter must be an object, got ${String(filter)}`);
      knownKeys('schedules list', filter, LIST_KEYS);
      if (filter.type !== undefined) checkType(filter.type);
      const rows = await due.list({ type: filter.type ?? null, limit: int('limit', filter.limit, 100, 1, 100_000), maxBytes: o.maxPayloadBytes });
      return rows.map((r) => ({ id: r.id, type: r.topic, dueAt: new Date(r.dueAt).toISOString(), name: r.name, event: r.event }));
    },
    cancel: async (name, options) => {
      checkDueName(name);
      if (options === undefined) return due.cancel(name, null);
      if (options === null || typeof options !== 'object') throw invalid('INVALID_OPTION', `cancel options must be an object, got ${String(options)}`);
      knownKeys('cancel', options, CANCEL_KEYS);
      if (options.id === undefined) return due.cancel(name, null);
      const text = (what: string, v: unknown, max: number) => {
        if (typeof v !== 'string' || v.length === 0 || v.length > max) throw invalid('INVALID_OPTION', `invalid cancel ${what} ${JSON.stringify(v)}: expected 1 to ${max} characters`);
        return v;
      };
      const windowMs = options.dedupWindowMs === undefined ? o.dedupWindowMs : DEDUP_WINDOW_MS.resolve('dedupWindowMs', options.dedupWindowMs);
      const once = { id: text('id', options.id, MAX_ID_LENGTH), source: options.source === undefined ? o.source : text('source', options.source, MAX_SOURCE_LENGTH), windowMs };
      return windowMs > 0 ? due.cancel(name, once) : due.cancel(name, null);
    },
    remove: (ids) => {
      if (!Array.isArray(ids) || ids.some((i) => typeof i !== 'string' || i === '')) {
        return Promise.reject(invalid('INVALID_OPTION', `invalid schedule ids ${JSON.stringify(ids)}: expected an array of id strings`));
      }
      return due.remove(ids);
    },
  };
}
