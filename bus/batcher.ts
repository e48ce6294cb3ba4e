// "Collect, flush on setImmediate": items added in one turn of the event loop go out together, in
// one store round trip. Used for acks (consumer-state.ts) and publishes (publish.ts).

/**
 * Collects items and hands them to `send` on the next setImmediate, all at once; items added while
 * a send is in flight go in the next one, so sends never overlap and keep the order items were
 * added in (unless `overlap`, BatcherOptions, lets them go meanwhile, still in that order). `send`
 * settles its own errors (a rejection is not reported, and the batch is not retried).
 *
 * With `atOnce` (BatcherOptions), an item added while nothing waits and nothing is being sent is handed to `send`
 * at once, inside add(), when atOnce() says so: a lone item does not wait for the next turn (about
 * 10-20 us of an in-process SQLite hop). Items added while that send is in flight still go together
 * in the next one, so a burst costs one extra send at most.
 */
export interface BatcherOptions<T = unknown> {
  /** True: an item added while nothing waits or is being sent is sent at once, inside add(). */
  atOnce?: () => boolean;
  /**
   * While it returns true, a send falling due is put off, its items left for take() (the
   * consumer's acks, while a read that will carry them is on its way back); kick() sends them once
   * it is false again. flush() never defers.
   */
  deferred?: () => boolean;
  /**
   * While it returns true, add() sets no setImmediate: the items wait for the caller's next take()
   * or kick(), which it is about to make (the read loop handing a batch to its handlers: the read
   * after it carries the acks they leave, or the loop kicks them).
   */
  carried?: () => boolean;
  /**
   * Called on the next setImmediate after items were added while a send is in flight, with those
   * items: true sends them then, without waiting for the send in flight (the sends overlap), for a
   * `send` whose effects keep the order it was called in by themselves (commands written to one
   * Redis connection). False leaves them for the send after the one in flight, as without it.
   */
  overlap?: (waiting: readonly T[]) => boolean;
}

export class Batcher<T> {
  private items: T[] = [];
  private sending: Promise<void> | null = null;
  /** kick() set a setImmediate that has not run yet. */
  private due = false;
  /** `overlap`: the setImmediate that may send while `sending` is in flight, and the sends it made, until they settle. */
  private early: Promise<void> | null = null;
  private readonly overlapping = new Set<Promise<void>>();

  constructor(
    private readonly send: (items: T[]) => Promise<void>,
    private readonly o: BatcherOptions<T> = {},
  ) {}

  /** Items waiting to be sent (not counting a send in flight). */
  get pending(): number {
    return this.items.length;
  }

  /** Whether flush() has anything to wait for: items waiting, or a send in flight (overlapping ones included). */
  get busy(): boolean {
    return this.items.length > 0 || this.sending !== null || this.overlapping.size > 0;
  }

  add(item: T): void {
    // Into an emptied list, a list of one: the first push into an empty array would allocate room
    // for 16 (the consumer adds one ack per event, the publisher one call, each taken at once).
    if (this.items.length === 0) this.items = [item];
    else this.items.push(item);
    if (this.sending !== null) return this.overlapSoon();
    if (this.items.length === 1 && this.o.atOnce?.() === true) this.sending = this.drain();
    else if (this.o.carried?.() !== true) this.kick();
  }

  /**
   * Sends what waits on the next setImmediate (unless deferred then, or a send is already due or in
   * flight, which takes them). One setImmediate of a callback made once: no promise, closure or
   * async drain per kick, where the consumer kicks its acks once per settled delivery and the read
   * that follows usually takes them first (measured: about 500 bytes per event of a Redis hop).
   */
  kick(): void {
    if (this.items.length === 0 || this.sending !== null || this.due) return;
    this.due = true;
    setImmediate(this.fallDue);
  }

  /**
   * kick()'s setImmediate. A drain is started only with items waiting, so its first await comes
   * before its `finally`: started with none, it would end inside the call, clearing `sending` before
   * the assignment below set it to a settled promise for good (no send would ever start again).
   */
  private readonly fallDue = (): void => {
    this.due = false;
    if (this.sending !== null || this.items.length === 0 || this.o.deferred?.() === true) return;
    this.sending = this.drain();
  };

  /**
   * With `overlap`: on the next setImmediate, sends what waits without waiting for the send in
   * flight, when overlap() agrees (else the send in flight takes it after its own, as always).
   */
  private overlapSoon(): void {
    const overlap = this.o.overlap;
    if (overlap === undefined || this.early !== null) return;
    this.early = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.early = null;
      if (this.sending === null || this.items.length === 0 || !overlap(this.items)) return;
      const sent: Promise<void> = this.send(this.take())
        .catch(() => {})
        .finally(() => this.overlapping.delete(sent));
      this.overlapping.add(sent);
    });
  }

  /** Takes every item not sent yet, to carry them some other way (the consumer's acks ride on its next read). */
  take(): T[] {
    const items = this.items;
    this.items = [];
    return items;
  }

  /** Puts back items take() gave that could not be carried; they go with the next send. */
  restore(items: T[]): void {
    this.items.push(...items);
  }

  /** Resolves once every item added so far has been sent; sends what waits now rather than on the next setImmediate. */
  async flush(): Promise<void> {
    while (this.sending !== null || this.items.length > 0 || this.overlapping.size > 0) {
      if (this.items.length > 0) this.sending ??= this.drain();
      await Promise.all([this.sending, ...this.overlapping]);
    }
  }

  /** Sends until nothing waits; called with items waiting (see fallDue). */
  private async drain(): Promise<void> {
    try {
      while (this.items.length > 0) await this.send(this.take()).catch(() => {});
    } finally {
      this.sending = null;
    }
  }
}
