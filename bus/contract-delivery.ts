// A delivery as the Bus contract (bus/contract.ts) hands it over: the handler and its context, what
// became of the delivery (onOutcome), and the subscription that runs them.
import type { CloudEvent } from './event.js';
import type { KeyedStats } from './keyed/contract.js';

/** A delivery's handler; `T` is the `data` the caller expects (`(e: CloudEvent<{ id: string }>) => ...`). */
export type Handler<T = unknown> = (event: CloudEvent<T>, ctx: DeliveryContext) => unknown;

export interface DeliveryContext {
  /** 1 for the first delivery. */
  readonly attempt: number;
  /** Store position of the event in its topic (Redis stream id, SQLite sequence). */
  readonly position: string;
  readonly group: string;
  readonly consumer: string;
  /** Aborted when the subscription stops waiting for this handler (close without drain, drain timeout). */
  readonly signal: AbortSignal;
  /** Dead-letter this event once the handler returns, with no further attempt. */
  deadLetter(reason: string): void;
}

/**
 * What became of one delivery, reported to `SubscribeOptions.onOutcome`: `handled` (acknowledged),
 * `failed` (the handler threw; `retry` says whether another attempt follows), `dead_lettered`
 * (with its reason: `failed`, `malformed`, `oversize`, `non_retryable` or the handler's own), reported
 * once the dead letter is stored.
 */
export interface DeliveryOutcome {
  outcome: 'handled' | 'failed' | 'dead_lettered';
  type: string;
  group: string;
  /** The event's id ('' for an entry that could not be decoded) and its position in the topic. */
  id: string;
  position: string;
  attempt: number;
  /** Handler run time; 0 for dead letters that never reached the handler. */
  durationMs: number;
  retry?: boolean;
  reason?: string;
  error?: unknown;
}

export interface Subscription {
  readonly group: string;
  readonly consumer: string;
  /**
   * Stops fetching. With `drain` (default) waits up to `drainTimeoutMs` for handlers in flight and
   * acknowledges those that finish; whatever did not finish stays pending for another consumer.
   */
  close(options?: { drain?: boolean | undefined }): Promise<void>;
  /** A keyed subscription's figures in this process (see KeyedStats); null when it is not keyed. */
  keyedStats?(): KeyedStats | null;
}
