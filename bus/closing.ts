// The store calls a close makes once it has stopped (a subscription's last acknowledgements, the
// bus' publishes in flight...), bounded: a store that does not answer (Redis down, its connection
// retrying for over a minute, or stopped and silent) must not hold a closing process past its drain.

/**
 * How long a close waits for its store calls after the drain (a subscription's: give back what it
 * held, the last heartbeat, acknowledgements, a keyed group's commit and release, forgetting the
 * consumer; the bus': publishes in flight, a delayed-event move) before giving up on them.
 */
export const CLOSE_STORE_MS = 5000;

/** How long a close that follows a give-up asks the store whether it answers again (StoreSilence). */
export const PING_MS = 1000;

/**
 * What the closes of one bus know of its store. Once a close gave up on it (no answer within
 * CLOSE_STORE_MS), each close after it first pings it (PING_MS at most) and waits for its own store
 * calls only if it answered: a host stopping its agents one after another during an outage waits
 * CLOSE_STORE_MS once, then about PING_MS an agent, not CLOSE_STORE_MS each; a store answering
 * again is waited for as before (publishes still in flight then complete).
 */
export class StoreSilence {
  private silent = false;

  constructor(private readonly ping: () => Promise<unknown>) {}

  /** A close gave up on the store. */
  gaveUp(): void {
    this.silent = true;
  }

  /** How long a close may wait for its store calls now: CLOSE_STORE_MS, or 0 while the store stays silent after a give-up. */
  async budget(): Promise<number> {
    if (!this.silent) return CLOSE_STORE_MS;
    const answered = await fulfilsBy(this.ping(), Date.now() + PING_MS);
    if (answered) this.silent = false;
    return answered ? CLOSE_STORE_MS : 0;
  }
}

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

/** Whether `p` resolves (not rejects) before `by` (epoch ms); a later rejection is handled. */
export async function fulfilsBy(p: Promise<unknown>, by: number): Promise<boolean> {
  let fulfilled = false;
  return (await settlesBy(p.then(() => void (fulfilled = true)), by)) && fulfilled;
}
