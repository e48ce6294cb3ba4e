// The consumer's two timed waits: a handler call bounded by timeoutMs, and a pause cut short by close.
import { TimeoutError } from './errors.js';

/** A handler call's timeoutMs clock, stopped while the handler waits durably (ctx.waitFor does not count). */
export interface HandlerClock {
  /** Stops the clock (nested pauses count: it runs again after as many resumes). */
  pause(): void;
  resume(): void;
}

/** The clock of a call without timeoutMs. */
export const NO_CLOCK: HandlerClock = { pause() {}, resume() {} };

/**
 * Calls `call` for at most `ms` of its clock: past it the call counts as failed with a TimeoutError
 * (`aborter` aborts with it, so the handler's signal fires) and the caller's slot is free; a handler
 * that ignores the abort runs on unobserved, its outcome dropped. `what` names the call in the
 * error. `call` gets the clock, to pause it while it waits for something that has its own deadline.
 */
export async function callWithTimeout(call: (clock: HandlerClock) => unknown, ms: number, aborter: AbortController, what: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  let left = ms;
  let since = 0;
  let paused = 0;
  let done = false;
  let fire: () => void = () => {};
  const start = () => {
    since = Date.now();
    timer = setTimeout(fire, left);
  };
  const clock: HandlerClock = {
    pause() {
      if (paused++ > 0 || done) return;
      clearTimeout(timer);
      left = Math.max(0, left - (Date.now() - since));
    },
    resume() {
      if (--paused === 0 && !done && !aborter.signal.aborted) start();
    },
  };
  const expired = new Promise<never>((_, reject) => {
    fire = () => {
      const err = new TimeoutError(`${what} ran past timeoutMs ${ms}`);
      aborter.abort(err);
      reject(err);
    };
  });
  start();
  const running = (async () => call(clock))();
  try {
    return await Promise.race([running, expired]);
  } finally {
    done = true; // no resume restarts the timer from now on
    clearTimeout(timer);
    running.catch(() => {}); // a late rejection belongs to nobody now
  }
}

/**
 * Waits `ms`, or less if `signal` aborts. Its listener goes when the wait ends: a consumer's signal
 * lives as long as the consumer, and a standby or a store outage waits on it every few hundred ms.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
