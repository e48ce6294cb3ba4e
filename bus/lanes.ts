// Subject lanes, for orderBy 'subject': deliveries of one subject run one at a time, in the order
// they arrived; deliveries of other subjects pass them. A lane exists while its subject has one.

/** One queue per subject; the head of each is the delivery running (or waiting for its retry). */
export class SubjectLanes<T> {
  private readonly lanes = new Map<string, T[]>();
  /** Deliveries waiting behind their lane's head, all lanes together (they hold a concurrency slot). */
  queued = 0;

  /** Puts `item` in its subject's lane: true when it is the head and may run now, false when it waits. */
  enter(subject: string, item: T): boolean {
    const lane = this.lanes.get(subject);
    if (lane === undefined) {
      this.lanes.set(subject, [item]);
      return true;
    }
    lane.push(item);
    this.queued++;
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
    return lane[0];
  }
}
