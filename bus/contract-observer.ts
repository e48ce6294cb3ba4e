// What a bus tells about its own work beyond deliveries (Bus.observe; deliveries have onOutcome):
// the delayed events its mover moved, and its requests. The host turns these into metrics; the bus
// depends on nobody watching.

/** Delayed events one move of this bus' mover put into their topic. */
export interface DueMoved {
  type: string;
  /** How many of this type the move took. */
  count: number;
  /**
   * Each one's lateness in ms: the time the move returned minus the entry's due time (never
   * negative, as nothing is moved before it is due). Covers the mover's poll interval and the
   * store round trip, not the wait in the topic before a consumer reads it.
   */
  lateMs: number[];
}

/**
 * How a request (bus.request, ctx.request) ended: `replied` (`durationMs`: from the call to the
 * reply's arrival), `timed_out` (no reply within its timeoutMs), or `failed` (the handler's group
 * dead-lettered it: RequestFailedError; or never answered: the publish was refused, or the bus
 * closed while it waited).
 */
export interface RequestOutcome {
  type: string;
  outcome: 'replied' | 'timed_out' | 'failed';
  durationMs: number;
}

/**
 * Each member is optional and called synchronously, in the bus' own call path: keep it cheap and
 * do not throw (a throw is logged and ignored).
 */
export interface BusObserver {
  /** This bus' mover moved delayed events (whoever published them), per type. */
  dueMoved?(moved: DueMoved[]): void;
  /** A request was made through this bus (counted before it is published; each gets one requestEnded). */
  requestSent?(type: string): void;
  requestEnded?(r: RequestOutcome): void;
  /**
   * A reply arrived that no request waits for: its request timed out first (a late reply), or it
   * is a second reply (a request handled by several groups). Dropped.
   */
  replyDropped?(): void;
}
