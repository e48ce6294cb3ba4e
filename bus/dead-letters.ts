// bus.deadLetters: listing, reading, retrying and purging a store's dead letters, with the
// arguments checked at the call.
import type { DeadLetter, DeadLetters } from './contract.js';
import type { Driver } from './driver.js';
import { asTopic, checkType } from './event.js';
import { invalid } from './errors.js';
import { int, knownKeys } from './validate.js';
import { removeRecordsOf } from './keyed/waits.js';

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
    retry: async (ids, options = {}) => {
      checkIds(ids);
      if (options === null || typeof options !== 'object') throw invalid('INVALID_OPTION', `dead-letter retry options must be an object, got ${String(options)}`);
      knownKeys('dead-letter retry', options, ['fresh']);
      if (options.fresh !== undefined && typeof options.fresh !== 'boolean') throw invalid('INVALID_OPTION', `invalid dead-letter retry fresh ${JSON.stringify(options.fresh)}: expected true or false`);
      // Removed before the hand-back: once handed back, a handler may already be reading them.
      if (options.fresh === true) await removeRecords(driver, await found(driver, ids));
      return driver.deadLetters.retry(ids);
    },
    purge: async (ids) => {
      checkIds(ids);
      if (driver.state === undefined) return driver.deadLetters.purge(ids);
      // One at a time: only a dead letter this call purged loses its records (one retried meanwhile
      // by another caller runs with them, as a retry does).
      let n = 0;
      for (const dl of await found(driver, [...new Set(ids)])) {
        if ((await driver.deadLetters.purge([dl.id])) === 0) continue;
        n++;
        await removeRecords(driver, [dl]);
      }
      return n;
    },
  };
}

/** The dead letters `ids` name (those found), before a purge or a fresh retry removes their records. */
async function found(driver: Driver, ids: string[]): Promise<DeadLetter[]> {
  if (driver.state === undefined) return [];
  const dls = await Promise.all(ids.map((id) => driver.deadLetters.get(id)));
  return dls.filter((dl): dl is DeadLetter => dl !== null);
}

/**
 * The durable wait and step records of each dead letter's event in its group (a keyed handler's
 * runs, bus/keyed/waits.ts). A dead letter whose event could not be decoded never ran a handler.
 */
async function removeRecords(driver: Driver, dls: DeadLetter[]): Promise<void> {
  for (const dl of dls) if (dl.event !== null && driver.state !== undefined) await removeRecordsOf(driver.state, dl.group, dl.event);
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
