// Subject lanes, for orderBy 'subject': deliveries of one subject run one at a time, in the order
// they arrived; deliveries of other subjects pass them. A lane exists while its subject has one.

/** One queue per subject; the head of each is the delivery running (or waiting for its retry). */
export class SubjectLanes<T> {
  private readonly lanes = new Map<string, T[]>();
  /** Deliveries waiting behind their lane's head, all lanes together (they hold a concurrency slot). */
  queued = 0;
  /**
   * Of `queued`, those behind a parked lane (park()), kept as a running count so the read loop
   * never walks the parked subjects to know it.
   */
  parkedQueued = 0;
  /** Parked subjects: how many park() calls each has not yet undone. */
  private readonly parked = new Map<string, number>();

  /** Puts `item` in its subject's lane: true when it is the head and may run now, false when it waits. */
  enter(subject: string, item: T): boolean {
    const lane = this.lanes.get(subject);
    if (lane === undefined) {
      this.lanes.set(subject, [item]);
      return true;
    }
    lane.push(item);
    this.queued++;
    if (this.parked.has(subject)) this.parkedQueued++;
    return false;
  }

  /**
   * `item` is done. When it was its lane's head, returns the delivery now at the head (to be run:
   * the caller hands it to its scheduler), or undefined when the lane emptied and was removed. An
   * item that is not a head (never entered) changes nothing.
   */
  leave(subject: string, item: T): T | undefined {
    const lane = this.lanes.get(subject);
    if (lane === undefined || lane[0] !== item) return undefined;
    lane.shift();
    if (lane.length === 0) {
      this.lanes.delete(subject);
      return undefined;
    }
    this.queued--;
    if (this.parked.has(subject)) this.parkedQueued--;
    return lane[0];
  }

  /** How many items wait behind `subject`'s head. */
  count(subject: string): number {
    const lane = this.lanes.get(subject);
    return lane === undefined ? 0 : lane.length - 1;
  }

  /** The items waiting behind `subject`'s head, in order (a copy). */
  waiting(subject: string): T[] {
    return this.lanes.get(subject)?.slice(1) ?? [];
  }

  /** Takes a waiting (not head) item out of its lane; false when it is not waiting there. */
  remove(subject: string, item: T): boolean {
    const lane = this.lanes.get(subject);
    const i = lane === undefined ? -1 : lane.indexOf(item, 1);
    if (i < 1) return false;
    lane!.splice(i, 1);
    this.queued--;
    if (this.parked.has(subject)) this.parkedQueued--;
    return true;
  }

  /**
   * `subject`'s head is parked (keyed: its handler waits in ctx.waitFor): the deliveries behind it,
   * now and until unpark(), count in `parkedQueued`. Calls nest: the lane stays parked until each
   * park() has its unpark().
   */
  park(subject: string): void {
    const n = this.parked.get(subject) ?? 0;
    this.parked.set(subject, n + 1);
    if (n === 0) this.parkedQueued += this.count(subject);
  }

  /** Undoes one park() of `subject`; a subject never parked here is ignored. */
  unpark(subject: string): void {
    const n = this.parked.get(subject);
    if (n === undefined) return;
    if (n > 1) return void this.parked.set(subject, n - 1);
    this.parked.delete(subject);
    this.parkedQueued -= this.count(subject);
  }
}
