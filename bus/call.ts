// The consumer's two timed waits: a handler call bounded by timeoutMs, and a pause cut short by close.
import { TimeoutError } from './errors.js';

/**
 * Calls `call` for at most `ms`: past it the call counts as failed with a TimeoutError (`aborter`
 * aborts with it, so the handler's signal fires) and the caller's slot is free; a handler that
 * ignores the abort runs on unobserved, its outcome dropped. `what` names the call in the error.
 */
export async function callWithTimeout(call: () => unknown, ms: number, aborter: AbortController, what: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const running = (async () => call())();
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TimeoutError(`${what} ran past timeoutMs ${ms}`);
      aborter.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([running, expired]);
  } finally {
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
