// bus.deadLetters: listing, reading, retrying and purging a store's dead letters, with the
// arguments checked at the call.
import type { DeadLetter, DeadLetters } from './contract.js';
import type { Driver } from './driver.js';
import { asTopic, checkType } from './event.js';
import { invalid } from './errors.js';
import { int, knownKeys } from './validate.js';

const DL_FILTER_KEYS = ['group', 'type', 'limit'];

export function deadLettersOf(driver: Driver): DeadLetters {
  return {
    list: async (filter = {}) => {
      if (filter === null || typeof filter !== 'object') throw invalid('INVALID_OPTION', `dead-letter list filter must be an object, got ${String(filter)}`);
      knownKeys('dead-letter list', filter, DL_FILTER_KEYS);
      if (filter.group !== undefined && (typeof filter.group !== 'string' || filter.group === '')) {
        throw invalid('INVALID_OPTION', `invalid group ${JSON.stringify(filter.group)}: expected a group name`);
      }
      if (filter.type !== undefined) checkType(filter.type);
      const dls = await driver.deadLetters.list({ group: filter.group, type: filter.type, limit: int('limit', filter.limit, 100, 1, 100_000) });
      return dls.map((dl) => asDelivered(dl)!);
    },
    get: async (id) => asDelivered(await driver.deadLetters.get(String(id))),
    retry: (ids) => driver.deadLetters.retry(checkIds(ids)),
    purge: (ids) => driver.deadLetters.purge(checkIds(ids)),
  };
}

/** A dead letter's event as it was delivered: typed by its topic (see asTopic). */
function asDelivered(dl: DeadLetter | null): DeadLetter | null {
  return dl?.event ? { ...dl, event: asTopic(dl.event, dl.type) } : dl;
}

function checkIds(ids: unknown): string[] {
  if (!Array.isArray(ids) || ids.some((i) => typeof i !== 'string' || i === '')) {
    throw invalid('INVALID_OPTION', `invalid dead letter ids ${JSON.stringify(ids)}: expected an array of id strings`);
  }
  return ids;
}
