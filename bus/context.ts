// The DeliveryContext a handler gets, one per handler call: the same class for a subscription's
// deliveries (handler-call.ts) and a replay's (replay.ts), so `ctx.deadLetter` means the same in both.
import type { DeliveryContext } from './contract.js';
import { describe } from './thrown.js';
import { invalid } from './errors.js';

/** The reason stored when a handler calls `ctx.deadLetter` with none (an empty or missing reason). */
export const NO_REASON = 'dead-lettered by handler';

export class Context implements DeliveryContext {
  /** Set by `deadLetter`: the reason as text (any value a caller passes is described, never thrown on). */
  deadLetterReason: string | undefined;
  /** Set by `retryIn`: the delay before the next attempt. */
  retryInMs: number | undefined;

  constructor(
    readonly attempt: number,
    readonly position: string,
    readonly group: string,
    readonly consumer: string,
    readonly signal: AbortSignal,
  ) {}

  /** Set by `reply`: the reply to a request, instead of the handler's return value. */
  replied: { value: unknown } | undefined;

  reply(value: unknown): void {
    this.replied = { value };
  }

  /** Set by requests.ts `answering`: this call answers its request even through a pattern (and a dead letter fails it). */
  answering = false;

  retryIn(ms: number): void {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > 86_400_000) {
      throw invalid('INVALID_OPTION', `invalid retryIn ${String(ms)}: expected 0 to 86400000 ms`);
    }
    this.retryInMs = Math.round(ms);
  }

  deadLetter(reason: string): void {
    this.deadLetterReason = reason ? describe(reason) : NO_REASON;
  }
}
