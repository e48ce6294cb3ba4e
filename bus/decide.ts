// The delivery decision: what becomes of a delivery when it arrives and once its handler settled —
// run it, acknowledge it, retry it after a delay, or dead-letter it with a reason. Pure: it reads
// only its arguments (and `random` for the jitter), so each case is a row of a table test with no
// store (test/decide.test.ts); scheduler.ts performs what it decides.
import type { BackoffOptions } from './contract.js';
import { NonRetryableError, RetryLaterError, ValidationError } from './errors.js';
import { backoffDelay } from './backoff.js';
import { describe, isA, stackOf } from './thrown.js';

export type Decision =
  | { readonly act: 'run' }
  | { readonly act: 'ack' }
  /** Run it again in this consumer after `delayMs` (the next attempt is counted in the store first). */
  | { readonly act: 'retry'; readonly delayMs: number }
  /** `error`: what was thrown as `<name>: <message>` ('' for ctx.deadLetter); `stack`: its stack (stackOf). */
  | { readonly act: 'dead_letter'; readonly reason: string; readonly error: string; readonly stack?: string | undefined };

export interface RetryPolicy {
  /** Deliveries before an event becomes a dead letter (SubscribeOptions.maxAttempts). */
  maxAttempts: number;
  backoff: Required<BackoffOptions>;
}

/** What arrived from the store: its entry decoded or not, and the deliveries counted so far (this one included). */
export interface Arrival {
  attempts: number;
  /** null: the entry could not be decoded (or was not, being oversize). */
  event: unknown;
  oversize?: boolean | undefined;
  malformed?: string | undefined;
}

/** How a handler call settled. `deadLetterReason`: set by ctx.deadLetter (see Context). */
export interface Settled {
  /** Deliveries counted so far, this one included (DeliveryContext.attempt). */
  attempts: number;
  threw: boolean;
  /** What was thrown, when `threw`. */
  error: unknown;
  deadLetterReason: string | undefined;
  /** Set by ctx.retryIn: a failed attempt, the next one after this delay. */
  retryInMs?: number | undefined;
}

const RUN: Decision = Object.freeze({ act: 'run' });
const ACK: Decision = Object.freeze({ act: 'ack' });

/**
 * Before the handler: an entry that could not be decoded is a dead letter `malformed` (or
 * `oversize`); one delivered more than `maxAttempts` times (the consumer of the previous delivery
 * stopped renewing its lease before settling it) is given up on as `failed`; anything else runs.
 * The error counts deliveries as the dead letter's `attempts` does (this one included, not run),
 * and claims no crash: a consumer stopped gracefully before its handler finished lets its lease
 * run out the same way.
 */
export function onArrival(d: Arrival, maxAttempts: number): Decision {
  if (d.event === null) return { act: 'dead_letter', reason: d.oversize ? 'oversize' : 'malformed', error: d.malformed ?? 'malformed entry' };
  if (d.attempts > maxAttempts) {
    // Counted deliveries: those given back uncounted at a close (never started, or parked in a wait) are not among them.
    const error = `delivered ${d.attempts} times (maxAttempts ${maxAttempts}), not run again: the consumer of delivery ${d.attempts - 1} stopped renewing its lease (it crashed, or was stopped before it finished)`;
    return { act: 'dead_letter', reason: 'failed', error };
  }
  return RUN;
}

/**
 * After the handler. Resolved: acknowledged, unless it called ctx.deadLetter (then a dead letter
 * with its reason). Threw (which wins over ctx.deadLetter): a NonRetryableError is a dead letter
 * `non_retryable`; the last allowed attempt a dead letter `failed`; any other a retry after
 * backoffDelay(attempts). Allocates nothing for the common case (ack).
 */
export function onSettled(s: Settled, policy: RetryPolicy, random: () => number = Math.random): Decision {
  if (!s.threw && s.retryInMs === undefined) return s.deadLetterReason === undefined ? ACK : { act: 'dead_letter', reason: s.deadLetterReason, error: '' };
  if (!s.threw) {
    // ctx.retryIn: a failed attempt with its own delay.
    if (s.attempts >= policy.maxAttempts) return { act: 'dead_letter', reason: 'failed', error: `retryIn(${s.retryInMs}) after the last allowed attempt` };
    return { act: 'retry', delayMs: s.retryInMs! };
  }
  if (isA(s.error, NonRetryableError) || (isA(s.error, ValidationError) && (s.error as ValidationError).retryable === false)) return { act: 'dead_letter', reason: 'non_retryable', error: describe(s.error), stack: stackOf(s.error) };
  if (s.attempts >= policy.maxAttempts) return { act: 'dead_letter', reason: 'failed', error: describe(s.error), stack: stackOf(s.error) };
  if (isA(s.error, RetryLaterError)) return { act: 'retry', delayMs: (s.error as RetryLaterError).delayMs };
  return { act: 'retry', delayMs: backoffDelay(s.attempts, policy.backoff, random) };
}
