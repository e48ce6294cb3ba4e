import type { Bus } from '../bus/contract.js';
import { invalid } from '../bus/errors.js';

/** What a retry or purge of named dead letters did. */
export interface DeadLetterOpResult {
  /** How many were retried or purged. */
  done: number;
  /** The ids that name no dead letter (a typo, or already retried or purged). */
  missing: string[];
}

/**
 * `dlq retry` / `dlq purge` and the admin UI's buttons, checked the same way: at least one id, each
 * a non-empty string; each id not found is named, and the others are still done. `fresh`: a retry
 * first removes the events' durable step and wait records (DeadLetters.retry).
 */
export async function retryOrPurge(bus: Bus, op: 'retry' | 'purge', ids: unknown, options: { fresh?: boolean } = {}): Promise<DeadLetterOpResult> {
  if (!Array.isArray(ids) || ids.length === 0 || ids.some((i) => typeof i !== 'string' || i === '')) {
    throw invalid('INVALID_OPTION', `dead letter ${op} needs at least one id, got ${JSON.stringify(ids)?.slice(0, 200)}: expected an array of id strings`);
  }
  const missing: string[] = [];
  for (const id of ids as string[]) if ((await bus.deadLetters.get(id)) === null) missing.push(id);
  const found = (ids as string[]).filter((id) => !missing.includes(id));
  const done = found.length === 0 ? 0 : op === 'retry' ? await bus.deadLetters.retry(found, options) : await bus.deadLetters.purge(found);
  return { done, missing };
}
