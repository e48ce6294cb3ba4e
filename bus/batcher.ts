// "Collect, flush on setImmediate": items added in one turn of the event loop go out together, in
// one store round trip. Used for acks (consumer.ts) and publishes (publish.ts).

/**
 * Collects items and hands them to `send` on the next setImmediate, all at once; items added while
 * a send is in flight go in the next one, so sends never overlap and keep the order items were
 * added in. `send` settles its own errors (a rejection is not reported, and the batch is not retried).
 */
export class Batcher<T> {
  private items: T[] = [];
  private sending: Promise<void> | null = null;

  /**
   * `deferred`: while it returns true, a send falling due is put off, its items left for take()
   * (the consumer's acks, while a read that will carry them is on its way back); kick() sends them
   * once it is false again. flush() never defers.
   */
  constructor(
    private readonly send: (items: T[]) => Promise<void>,
    private readonly deferred: () => boolean = () => false,
  ) {}

  add(item: T): void {
    this.items.push(item);
    this.kick();
  }

  /** Sends what waits on the next setImmediate (unless deferred then, or a send is already due). */
  kick(): void {
    if (this.items.length === 0) return;
    this.sending ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drain(true));
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
    while (this.sending !== null || this.items.length > 0) {
      this.sending ??= this.drain();
      await this.sending;
    }
  }

  private async drain(deferrable = false): Promise<void> {
    try {
      if (deferrable && this.deferred()) return;
      while (this.items.length > 0) await this.send(this.take()).catch(() => {});
    } finally {
      this.sending = null;
    }
  }
}
