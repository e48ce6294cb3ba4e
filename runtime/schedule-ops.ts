import type { Bus } from '../bus/contract.js';
import { invalid } from '../bus/errors.js';

/** What a removal of pending delayed events by entry id did. */
export interface ScheduleRemoveResult {
  /** How many were pending and are removed (they never fire). */
  removed: number;
  /** How many distinct ids were asked for: the others had fired, were removed already, or name nothing. */
  of: number;
}

/** Most entry ids one removal takes (the admin UI's page shows at most 1000). */
export const MAX_SCHEDULE_REMOVE = 10_000;

/**
 * `schedules rm <id...>` and the admin UI's cancel buttons, checked the same way: at least one
 * entry id (ScheduledEvent.id, as `schedules ls` and the Schedules page list them), each a
 * non-empty string, at most MAX_SCHEDULE_REMOVE; an id given twice counts once. The ids not
 * pending are counted, and the others are still removed.
 */
export async function removeScheduled(bus: Bus, ids: unknown): Promise<ScheduleRemoveResult> {
  const schedules = bus.schedules;
  if (schedules === undefined) throw new Error('this store keeps no delayed events');
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_SCHEDULE_REMOVE || ids.some((i) => typeof i !== 'string' || i === '')) {
    throw invalid('INVALID_OPTION', `schedules rm needs 1 to ${MAX_SCHEDULE_REMOVE} entry ids, got ${JSON.stringify(ids)?.slice(0, 200)}: expected an array of id strings (schedules ls lists them)`);
  }
  const wanted = [...new Set(ids as string[])];
  return { removed: await schedules.remove(wanted), of: wanted.length };
}
