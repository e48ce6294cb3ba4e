// The context of a keyed handler call: the delivery's (context.ts) plus its key and the key's state.
import { AsyncLocalStorage } from 'node:async_hooks';
import { Context } from '../context.js';
import { misuse } from '../errors.js';
import type { CloudEvent } from '../event.js';
import type { KeyedDeliveryContext, KeyedRequestOptions, WaitOptions } from './contract.js';
import type { RequestOptions } from '../contract-options.js';
import { KeyedRequests } from './requests.js';
import { describe } from '../thrown.js';
import { checkStep } from './steps.js';

/** How a keyed handler run's durable calls are carried out (handler-call.ts wires them to its consumer). */
export interface DurableCalls {
  /** Runs the `n`-th durable call of a run, a waitFor (keyed/slots.ts waitParked, over waits.ts). */
  waiting(n: number, type: string, options: WaitOptions): Promise<CloudEvent>;
  /** Runs the `n`-th durable call of a run, a step (keyed/steps.ts). */
  stepping<T>(n: number, name: string, fn: () => T | Promise<T>): Promise<T>;
  /** Runs the `n`-th durable call of a run, a request (keyed/requests.ts), its options checked. */
  requesting(n: number, type: string, data: unknown, options: RequestOptions | undefined): Promise<unknown>;
  /** An in-memory request (`durable: false`): the bus' request. */
  asking(type: string, data: unknown, options: RequestOptions | undefined): Promise<unknown>;
}

/**
 * The step whose `fn` runs now, in the async context of that call: a durable call made from inside
 * it would take an ordinal only on the runs that call `fn` (a run finding the step recorded does
 * not), shifting every later call's record, so it is refused; a ctx.request there is an in-memory
 * one (the step records its answer, as before requests were durable).
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
    private readonly calls: DurableCalls,
  ) {
    super(attempt, position, group, consumer, signal);
  }

  /** Durable calls (waitFor, step and request) so far in this run: the next one's ordinal (its record's id). */
  waits = 0;

  /** Set when the handler has returned (handler-call.ts): a durable call made later has no run to belong to. */
  ended = false;

  waitFor<T = unknown>(type: string, options: WaitOptions<T>): Promise<CloudEvent<T>> {
    let p: Promise<CloudEvent<T>>;
    try {
      this.notNested(`waitFor ${type}`);
      this.notEnded(`waitFor ${type}`);
      p = this.calls.waiting(this.waits++, type, options as WaitOptions) as Promise<CloudEvent<T>>;
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
      p = this.calls.stepping(this.waits++, name, () => {
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

  request<R = unknown>(type: string, data: unknown, options?: KeyedRequestOptions): Promise<R> {
    let p: Promise<unknown>;
    try {
      if (options !== undefined && (options === null || typeof options !== 'object')) throw misuse(`ctx.request ${type}: options must be an object, got ${describe(options)}`);
      const { durable, ...rest } = options ?? {};
      if (durable !== undefined && typeof durable !== 'boolean') throw misuse(`invalid ctx.request ${type} durable ${describe(durable)}: expected true or false`);
      // Inside a step's function (`ctx.step('x', () => ctx.request(...))`, the way to make a request
      // survive a crash before requests were durable): in memory, its answer recorded by the step.
      if (durable === false || (durable === undefined && this.inStep)) p = this.calls.asking(type, data, rest);
      else {
        KeyedRequests.check(type, rest); // a refused call takes no ordinal
        const what = `ctx.request ${type}`;
        this.notNested(what);
        // A run that lost its delivery (timeoutMs, a lost lease, a close) asks nothing new.
        if (this.signal.aborted) throw this.signal.reason;
        this.notEnded(what);
        p = this.calls.requesting(this.waits++, type, data, rest);
      }
    } catch (err) {
      p = Promise.reject(err);
    }
    // Handled here too: a request the handler did not await must not crash the process with an
    // unhandled rejection. An await still gets the error.
    p.catch(() => {});
    return p as Promise<R>;
  }

  /** True inside the function of one of this run's steps (ctx.request there asks in memory). */
  get inStep(): boolean {
    return inStep.getStore()?.ctx === this;
  }

  private notEnded(what: string): void {
    // Its record would be opened after the commit removed the run's records, and kept for a year.
    if (this.ended) throw misuse(`${what} after its handler returned: await every durable call (ctx.step, ctx.waitFor, ctx.request) before the handler returns`);
  }

  private notNested(what: string): void {
    const outer = inStep.getStore();
    if (outer !== undefined && outer.ctx === this) {
      throw misuse(`${what} inside the function of ctx.step ${JSON.stringify(outer.name)}: durable calls cannot nest (a run that finds that step recorded does not call its function, so its inner calls would be skipped and every later call would find another's record); make them one after the other in the handler`);
    }
  }
}
