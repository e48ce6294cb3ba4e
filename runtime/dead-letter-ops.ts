import type { Bus } from '../bus/contract.js';
import { invalid } from '../bus/errors.js';

/** One dead letter a retry or purge took: its id, and what it held (the event id is null for an event that could not be decoded). */
export interface DeadLetterDone {
  id: string;
  group: string;
  type: string;
  eventId: string | null;
}

/** What a retry or purge of named dead letters did. */
export interface DeadLetterOpResult {
  /** How many were retried or purged (items.length). */
  done: number;
  /** The ids that name no dead letter (a typo, or already retried or purged). */
  missing: string[];
  /**
   * Each retried or purged, in the order named. A retried one leaves the dead letters: its id names
   * nothing any more, and if its event fails again it becomes a new dead letter with a new id (the
   * same event id, the same group).
   */
  items: DeadLetterDone[];
}

/**
 * `dlq retry` / `dlq purge` and the admin UI's buttons, checked the same way: at least one id, each
 * a non-empty string; an id named twice is done (and counted) once; each id not found is named, and
 * the others are still done. One id a store call, so each result says which dead letter it was:
 * one retried or purged meanwhile by someone else is missing, not miscounted. `fresh`: a retry
 * first removes the event's durable step and wait records (DeadLetters.retry).
 */
export async function retryOrPurge(bus: Bus, op: 'retry' | 'purge', ids: unknown, options: { fresh?: boolean } = {}): Promise<DeadLetterOpResult> {
  if (!Array.isArray(ids) || ids.length === 0) {
    throw invalid('INVALID_OPTION', `dead letter ${op} needs at least one id, got ${JSON.stringify(ids)?.slice(0, 200)}: expected an array of id strings`);
  }
  const bad = ids.find((i) => typeof i !== 'string' || i === '');
  if (bad !== undefined) throw invalid('INVALID_OPTION', `invalid dead letter id ${JSON.stringify(bad)?.slice(0, 200)} in ${op}: expected a non-empty id string (dlq ls lists them)`);
  const missing: string[] = [];
  const items: DeadLetterDone[] = [];
  for (const id of new Set(ids as string[])) {
    const dl = await bus.deadLetters.get(id);
    const n = dl === null ? 0 : op === 'retry' ? await bus.deadLetters.retry([id], options) : await bus.deadLetters.purge([id]);
    if (dl === null || n === 0) missing.push(id);
    else items.push({ id, group: dl.group, type: dl.type, eventId: dl.event?.id ?? null });
  }
  return { done: items.length, missing, items };
}
