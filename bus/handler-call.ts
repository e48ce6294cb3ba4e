// The handler call of a started delivery and its settlement: the context handed to the handler,
// the sync fast path and the keyed/timeoutMs/request path, a request's reply, and what the call's
// end decides (decide.ts) handed to the scheduler to carry out.
import type { Handler } from './contract.js';
import type { CloudEvent } from './event.js';
import type { Held } from './held.js';
import { Context } from './context.js';
import { onSettled, type Decision } from './decide.js';
import { isA } from './thrown.js';
import { StateTooLargeError } from './errors.js';
import { callWithTimeout, NO_CLOCK, type HandlerClock } from './call.js';
import type { KeyEntry } from './keyed/cache.js';
import { KeyedDelivery, type DurableCalls } from './keyed/context.js';
import { failedRequest } from './keyed/requests.js';
import { STATE_TOO_LARGE, type WaitOptions } from './keyed/contract.js';
import { waitId } from './keyed/waits.js';
import { readsItself, waitParked } from './keyed/slots.js';
import { answers, type RequestFailure } from './requests.js';
import type { ConsumerState } from './consumer-state.js';

/**
 * Publishes `value` as the reply to `request` (an event with `replyto`), handled in `group`; with
 * `failure`, the reply telling the request was dead-lettered there instead. See requests.ts.
 */
export type Reply = (request: CloudEvent, group: string, value: unknown, failure?: RequestFailure) => Promise<unknown>;

/** What a settled call hands back to its scheduler (scheduler.ts). */
export interface Settling {
  /** A slot is free: deliveries read ahead take it. */
  fill(): void;
  /** Carries out `decision` about `h`; `error`: what its handler threw, if it did. */
  perform(h: Held, decision: Decision, error?: unknown): void;
}

/**
 * Calls handlers and settles their deliveries. `run` is called once per started delivery (the
 * scheduler counted it as running); its settlement frees the slot (`running`), reports the
 * outcome, then has the scheduler carry out the decision, and wakes the read loop.
 */
export class HandlerCall {
  constructor(
    private readonly s: ConsumerState,
    private readonly handler: Handler,
    private readonly reply: Reply,
    private readonly next: Settling,
  ) {}

  /**
   * Calls the handler of a started delivery. The common case (not keyed, no timeoutMs, not a
   * request) is called without an async function around it: settled at once when the handler
   * returns a value, after one `.then` when it returns a promise (no async function, its promise
   * and a resumption per delivery, where most handlers of a fast drain return at once). Settling at once is
   * safe here: the scheduler took its list before calling, and whatever settling starts (a lane's
   * next delivery, one read ahead) is scheduled for a later microtask, never run inside.
   */
  run(h: Held): void {
    const s = this.s;
    const d = h.d;
    if (s.keyed !== null || s.o.timeoutMs > 0 || d.event!.replyto !== undefined) return void this.runAsync(h);
    const ctx = new Context(d.attempts, d.position, s.group, s.consumer, s.handlers.signal);
    const started = s.o.onOutcome || s.readAhead.adaptive ? performance.now() : 0;
    let pending: Promise<unknown> | null = null;
    try {
      const value = this.handler(d.event!, ctx);
      // A promise, or any thenable, is followed as `await` would (a `then` that throws: the handler failed).
      if (value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function') {
        pending = Promise.resolve(value);
      }
    } catch (err) {
      return this.settle(h, ctx, started, true, err, null, null);
    }
    if (pending === null) return this.settle(h, ctx, started, false, undefined, null, null);
    pending.then(
      () => this.settle(h, ctx, started, false, undefined, null, null),
      (err: unknown) => this.settle(h, ctx, started, true, err, null, null),
    );
  }

  /** run() for keyed subscriptions, timeoutMs and requests (answered before the delivery settles). */
  private async runAsync(h: Held): Promise<void> {
    const s = this.s;
    const d = h.d;
    let entry: KeyEntry | null = null;
    let ctx: Context;
    // With timeoutMs, the handler's signal also aborts at its timeout.
    const aborter = s.o.timeoutMs > 0 ? new AbortController() : null;
    const signal = aborter === null ? s.handlers.signal : AbortSignal.any([s.handlers.signal, aborter.signal]);
    // The timeoutMs clock of this call (paused while the handler waits in ctx.waitFor).
    let clock: HandlerClock = NO_CLOCK;
    let runEnded = null as AbortController | null;
    if (s.keyed !== null) {
      const entering = s.keyed.enter(h);
      entry = entering instanceof Promise ? await entering : entering;
      if (entry === null) return;
      const key = h.subject!;
      // A wait the handler left behind (it returned without awaiting it) ends with the handler.
      // Made at the first waitFor only: most handlers never wait.
      let waitSignal: AbortSignal | null = null;
      const runSignal = () => (waitSignal ??= AbortSignal.any([signal, (runEnded = new AbortController()).signal]));
      const calls: DurableCalls = {
        waiting: (n: number, type: string, options: WaitOptions) => {
          const ws = runSignal();
          return waitParked(s, this.next, h, key, clock, () => s.waits!.wait(h, key, n, type, options, ws));
        },
        stepping: <T>(n: number, name: string, fn: () => T | Promise<T>) => s.steps!.run(d.event!, key, n, name, fn),
        requesting: (n, type, data, options) => s.requests!.ask(d.event!, key, n, type, data, options, runSignal(), (wait) => waitParked(s, this.next, h, key, clock, wait, !readsItself(s, type))),
        asking: (type, data, options) => s.requests!.inMemory(type, data, options),
      };
      ctx = new KeyedDelivery(d.attempts, d.position, s.group, s.consumer, signal, key, entry.value, calls);
    } else ctx = new Context(d.attempts, d.position, s.group, s.consumer, signal);
    let threw = false;
    let error: unknown;
    const started = s.o.onOutcome || s.readAhead.adaptive ? performance.now() : 0;
    try {
      const value =
        aborter !== null
          ? await callWithTimeout((c) => ((clock = c), this.handler(d.event!, ctx)), s.o.timeoutMs, aborter, `handler of ${d.topic} ${d.event?.id ?? ''}`)
          : await this.handler(d.event!, ctx);
      // A request is answered before it is acknowledged (a reply lost to a crash is sent again, under the same id).
      if (d.event!.replyto !== undefined && ctx.deadLetterReason === undefined && ctx.retryInMs === undefined && answers(s.o.types, d.event!.type, ctx)) {
        await this.reply(d.event!, s.group, ctx.replied ? ctx.replied.value : value);
      }
    } catch (err) {
      threw = true;
      error = err;
    }
    if (ctx instanceof KeyedDelivery) ctx.ended = true;
    runEnded?.abort(new Error('the handler returned without awaiting its waitFor or request'));
    // Failed with its durable request's timeout or failure reply: that request's record goes before
    // the retry (or dead letter), which asks anew (keyed/requests.ts). Only a request of this run
    // (another key's error rethrown names a record not its own), and only while its tenure is current.
    const asked = threw && entry !== null && s.keyed!.current(h) ? failedRequest(error, s.group, d.event!) : undefined;
    if (asked !== undefined) await s.requests!.forget(asked);
    if (ctx.answering) h.answers = true; // its dead letter, if that is what this call ends in, fails the requester (retries.ts)
    this.settle(h, ctx, started, threw, error, entry, aborter);
  }

  /**
   * A handler call ended (`threw`: with `error`): its slot is freed, and its delivery's fate decided
   * and carried out. `entry`: a keyed call's key state; `aborter`: the timeoutMs one, if any.
   */
  private settle(h: Held, ctx: Context, started: number, threw: boolean, error: unknown, entry: KeyEntry | null, aborter: AbortController | null): void {
    const s = this.s;
    const d = h.d;
    if (s.readAhead.adaptive) s.readAhead.observe(performance.now() - started);
    s.running--;
    this.next.fill();
    if (s.abandoned) return;
    if (entry !== null) {
      // The records of the run's durable calls (waits and steps: one ordinal counter), removed once committed.
      const n = (ctx as KeyedDelivery).waits;
      const waits = n === 0 ? [] : Array.from({ length: n }, (_, i) => waitId(s.group, d.event!, i));
      const { stale, refused } = s.keyed!.settle(h, entry, !threw && ctx.deadLetterReason === undefined, (ctx as KeyedDelivery).state, waits);
      if (stale) return s.wake();
      if (refused !== null) [threw, error] = [true, refused];
    }
    const decision =
      threw && isA(error, StateTooLargeError)
        ? ({ act: 'dead_letter', reason: STATE_TOO_LARGE, error: (error as StateTooLargeError).message } as const)
        : onSettled({ attempts: d.attempts, threw, error, deadLetterReason: ctx.deadLetterReason, retryInMs: ctx.retryInMs }, s.o);
    // A ctx.deadLetter is reported once its dead letter is stored (Retries.deadLetter).
    if (s.o.onOutcome && (threw || ctx.deadLetterReason === undefined)) {
      // Timed out: the error is the one callWithTimeout aborted with (not a TimeoutError the handler threw itself).
      const timedOut = threw && aborter !== null && aborter.signal.aborted && error === aborter.signal.reason;
      s.out.report(threw ? 'failed' : 'handled', d, performance.now() - started, decision.act === 'retry', undefined, error, timedOut);
    }
    this.next.perform(h, decision, error);
    s.wake();
  }
}
