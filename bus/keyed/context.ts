// The context of a keyed handler call: the delivery's (context.ts) plus its key and the key's state.
import { Context } from '../context.js';
import type { CloudEvent } from '../event.js';
import type { KeyedDeliveryContext, WaitOptions } from './contract.js';
import { checkStep } from './steps.js';

/** Runs the `n`-th waitFor of a handler run (keyed/slots.ts waitParked, over waits.ts). */
export type Waiting = (n: number, type: string, options: WaitOptions) => Promise<CloudEvent>;
/** Runs a step that is the `n`-th durable call of a handler run (keyed/steps.ts). */
export type Stepping = <T>(n: number, name: string, fn: () => T | Promise<T>) => Promise<T>;

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

  waitFor<T = unknown>(type: string, options: WaitOptions<T>): Promise<CloudEvent<T>> {
    try {
      return this.waiting(this.waits++, type, options as WaitOptions) as Promise<CloudEvent<T>>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    try {
      checkStep(name, fn); // a refused call takes no ordinal
      return this.stepping(this.waits++, name, fn);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
