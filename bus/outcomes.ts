// What a consumer tells about its deliveries: the onOutcome callback, the dead-letter write with its
// warn line, and store errors (logged; the store stays the authority on what is pending).
import type { Logger } from 'pino';
import type { DeliveryOutcome } from './contract.js';
import type { Delivery, Driver } from './driver.js';
import type { ResolvedSubscribeOptions } from './options.js';
import { errForLog } from './thrown.js';

/** A store error of one kind is logged at most once in this long (storeError). */
export const STORE_ERROR_QUIET_MS = 10_000;

export class Outcomes {
  private readonly quiet = new Map<string, { until: number; unlogged: number }>();
  constructor(
    private readonly driver: Driver,
    private readonly o: ResolvedSubscribeOptions,
    private readonly log: Logger,
  ) {}

  /** Calls onOutcome, if set; a callback that throws is logged, never the delivery's problem. */
  report(outcome: DeliveryOutcome['outcome'], d: Delivery, durationMs: number, retry: boolean, reason: string | undefined, error: unknown, timedOut = false): void {
    if (!this.o.onOutcome) return;
    try {
      const o: DeliveryOutcome = { outcome, type: d.topic, group: this.o.group, id: d.event?.id ?? '', position: d.position, attempt: d.attempts, durationMs, retry, reason, error };
      if (timedOut) o.timedOut = true;
      this.o.onOutcome(o);
    } catch (err) {
      this.log.error({ group: this.o.group, err: errForLog(err) }, 'onOutcome threw');
    }
  }

  /**
   * Stores a dead letter, then reports it (onOutcome, the warn line): one the store refused stays
   * pending, comes back after its lease and is dead-lettered again then, so it is never reported
   * twice. `stack`: the thrown error's (stackOf), stored with the dead letter and logged. True once stored.
   */
  async deadLetter(d: Delivery, reason: string, error: string, stack?: string): Promise<boolean> {
    try {
      await this.driver.deadLetters.add(this.o.group, d, reason, error, stack);
      this.report('dead_lettered', d, 0, false, reason, error);
      const at = { group: this.o.group, type: d.topic, position: d.position, id: d.event?.id, attempts: d.attempts, reason, error };
      this.log.warn(stack === undefined ? at : { ...at, stack }, 'dead letter');
      return true;
    } catch (err) {
      this.storeError('dead letter', err);
      return false;
    }
  }

  /**
   * Logs a failed store call once per STORE_ERROR_QUIET_MS for each kind (`what`): during an outage
   * a pattern subscription's topic refresh fails every 100 ms, and each line said the same.
   */
  storeError(what: string, err: unknown): void {
    const now = Date.now();
    const quiet = this.quiet.get(what);
    if (quiet !== undefined && now < quiet.until) {
      quiet.unlogged++;
      return;
    }
    const more = quiet?.unlogged ? ` (${quiet.unlogged} more since the last one not logged)` : '';
    this.log.error({ group: this.o.group, consumer: this.o.consumer, err: errForLog(err) }, `store error during ${what}${more}`);
    this.quiet.set(what, { until: now + STORE_ERROR_QUIET_MS, unlogged: 0 });
  }
}
