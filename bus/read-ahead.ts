/**
 * How many events a consumer reads beyond its free slots (subscribe option `readAhead`).
 *
 * Read-ahead pays where handlers are fast: the next batch is on its way while this one runs, so a
 * drain stops waiting for a round trip per batch. It costs where they are slow: an event read
 * ahead waits about `readAhead / concurrency` handler durations on this consumer while another
 * consumer of the group may be idle (an LLM call of seconds, held behind two others), and a crash
 * leaves it waiting `claimIdleMs`. So, unset, it follows the handlers: `2 x concurrency` while the
 * mean handler call of this consumer (a moving average) is under FAST_HANDLER_MS, 0 otherwise and
 * until the first call has been measured. A number sets it for good. Unset on a store whose reads
 * cost no round trip (SQLite: DriverReads.roundTrip), it is 0: there it hid nothing and cost a
 * SQLite drain 12% more CPU per event (5.8 -> 6.5 us, readAhead 0 vs 128, concurrency 64).
 */

/** Below this mean handler duration an unset readAhead reads ahead: a held event then waits ~2x it at most. */
export const FAST_HANDLER_MS = 10;
/** Weight of the newest call in the moving average: about the last 16 calls count. */
const WEIGHT = 1 / 16;

export class ReadAhead {
  /** Moving average of handler durations in ms; -1 until one is measured. */
  private mean = -1;

  constructor(
    /** The readAhead option; undefined: follow the handlers. */
    private readonly fixed: number | undefined,
    private readonly concurrency: number,
    /** The store's reads cost a round trip (DriverReads.roundTrip); false: unset means 0. */
    private readonly roundTrip = true,
  ) {}

  /** Whether handler durations matter (readAhead unset, reads with a round trip): else observe() need not be called. */
  get adaptive(): boolean {
    return this.fixed === undefined && this.roundTrip;
  }

  /** Events to hold beyond concurrency now. */
  get ahead(): number {
    if (this.fixed !== undefined) return this.fixed;
    if (!this.roundTrip) return 0;
    return this.mean >= 0 && this.mean < FAST_HANDLER_MS ? 2 * this.concurrency : 0;
  }

  /** One handler call took `ms` (to its settling, waits included). */
  observe(ms: number): void {
    this.mean = this.mean < 0 ? ms : this.mean + (ms - this.mean) * WEIGHT;
  }
}
