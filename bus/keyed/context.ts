// The context of a keyed handler call: the delivery's (context.ts) plus its key and the key's state.
import { AsyncLocalStorage } from 'node:async_hooks';
import { Context } from '../context.js';
import { misuse } from '../errors.js';
import type { CloudEvent } from '../event.js';
import type { KeyedDeliveryContext, WaitOptions } from './contract.js';
import { checkStep } from './steps.js';

/** Runs the `n`-th waitFor of a handler run (keyed/slots.ts waitParked, over waits.ts). */
export type Waiting = (n: number, type: string, options: WaitOptions) => Promise<CloudEvent>;
/** Runs a step that is the `n`-th durable call of a handler run (keyed/steps.ts). */
export type Stepping = <T>(n: number, name: string, fn: () => T | Promise<T>) => Promise<T>;

/**
 * The step whose `fn` runs now, in the async context of that call: a durable call made from inside
 * it would take an ordinal only on the runs that call `fn` (a run finding the step recorded does
 * not), shifting every later call's record, so it is refused.
 */
const inStep = new AsyncLocalStorage<{ ctx: KeyedDelivery; name: string }>();

export class KeyedDelivery extends Context implements KeyedDeliveryContext {
  constructor(
    attempt: number,
    position: string,
    group: string,
    consumer: string,
    signal: AbortSignal,
    readonly key: string,
    /** The key's live state; what it holds when the handler resolves is committed. */
    public state: unknown,
    private readonly waiting: Waiting,
    private readonly stepping: Stepping,
  ) {
    super(attempt, position, group, consumer, signal);
  }

  /** Durable calls (waitFor and step) so far in this run: the next one's ordinal (its record's id). */
  waits = 0;

  /** Set when the handler has returned (handler-call.ts): a durable call made later has no run to belong to. */
  ended = false;

  waitFor<T = unknown>(type: string, options: WaitOptions<T>): Promise<CloudEvent<T>> {
    let p: Promise<CloudEvent<T>>;
    try {
      this.notNested(`waitFor ${type}`);
      this.notEnded(`waitFor ${type}`);
      p = this.waiting(this.waits++, type, options as WaitOptions) as Promise<CloudEvent<T>>;
    } catch (err) {
      p = Promise.reject(err);
    }
    // Handled here too: a wait the handler did not await ends with the handler (rejected), and must
    // not crash the process with an unhandled rejection. An await still gets the error.
    p.catch(() => {});
    return p;
  }

  step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      checkStep(name, fn); // a refused call takes no ordinal
      const what = `ctx.step ${JSON.stringify(name)}`;
      this.notNested(what);
      // A run that lost its delivery (timeoutMs, a lost lease, a close) starts no new side effect:
      // checked again right before fn, after the record was opened (a store round trip).
      if (this.signal.aborted) throw this.signal.reason;
      this.notEnded(what);
      p = this.stepping(this.waits++, name, () => {
        if (this.signal.aborted) throw this.signal.reason;
        return inStep.run({ ctx: this, name }, fn);
      });
    } catch (err) {
      p = Promise.reject(err);
    }
    // Handled here too: a step the handler did not await, ending after the commit removed its
    // record, must not crash the process with an unhandled rejection. An await still gets it.
    p.catch(() => {});
    return p;
  }

  private notEnded(what: string): void {
    // Its record would be opened after the commit removed the run's records, and kept for a year.
    if (this.ended) throw misuse(`${what} after its handler returned: await every durable call (ctx.step, ctx.waitFor) before the handler returns`);
  }

  private notNested(what: string): void {
    const outer = inStep.getStore();
    if (outer !== undefined && outer.ctx === this) {
      throw misuse(`${what} inside the function of ctx.step ${JSON.stringify(outer.name)}: durable calls cannot nest (a run that finds that step recorded does not call its function, so its inner calls would be skipped and every later call would find another's record); make them one after the other in the handler`);
    }
  }
}
