// The store calls a close makes once it has stopped (a subscription's last acknowledgements, the
// bus' publishes in flight...), bounded: a store that does not answer (Redis down, its connection
// retrying for over a minute, or stopped and silent) must not hold a closing process past its drain.

/**
 * How long a close waits for its store calls after the drain (a subscription's: give back what it
 * held, the last heartbeat, acknowledgements, a keyed group's commit and release, forgetting the
 * consumer; the bus': publishes in flight, a delayed-event move) before giving up on them.
 */
export const CLOSE_STORE_MS = 5000;

/**
 * Store calls made one after the other under one deadline: each is waited for until the deadline
 * at most; once it passed, the call in flight is abandoned (left to settle by itself, its
 * rejection handled) and those after it are not made. `notDone` names both, for the one warning
 * the caller logs.
 */
export class BoundedSteps {
  readonly notDone: string[] = [];
  private readonly by: number;

  constructor(ms: number) {
    this.by = Date.now() + ms;
  }

  /** Makes `call` (named `what` in notDone) unless the deadline passed; resolves whether it settled in time. */
  async step(what: string, call: () => Promise<unknown>): Promise<boolean> {
    if (this.notDone.length > 0 || Date.now() >= this.by) {
      this.notDone.push(what);
      return false;
    }
    if (!(await settlesBy(call(), this.by))) {
      this.notDone.push(what);
      return false;
    }
    return true;
  }
}

/** Whether `p` settles (resolved or rejected) before `by` (epoch ms); a later rejection is handled. */
export async function settlesBy(p: Promise<unknown>, by: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = p.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, by - Date.now()))))]);
  } finally {
    clearTimeout(timer);
  }
}
