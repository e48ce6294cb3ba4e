// The open subscriptions of a bus: bus.subscribe makes a Consumer here, and a pattern subscription
// hears at once of a topic this bus stores to for the first time (rather than at its next refresh).
import type { Logger } from 'pino';
import type { Handler, Subscription } from './contract.js';
import type { AppendEntry, Driver } from './driver.js';
import { invalid } from './errors.js';
import { resolveSubscribeOptions, type ResolvedSubscribeOptions } from './options.js';
import type { SubscribeOptions } from './contract.js';
import { Consumer, type Reply } from './consumer.js';
import type { StoreSilence } from './closing.js';
import type { RequestLink } from './requests.js';

/** Topics remembered as stored by this bus (see Subscriptions.stored); past it the set starts over. */
const PUBLISHED_KEPT = 100_000;

/** A subscribe call's options resolved and its handler checked: what any subscribe refuses at once. */
export function checkSubscribe(options: SubscribeOptions, handler: Handler): ResolvedSubscribeOptions {
  const so = resolveSubscribeOptions(options);
  if (typeof handler !== 'function') throw invalid('INVALID_OPTION', `subscribe handler must be a function, got ${typeof handler}`);
  return so;
}

export class Subscriptions {
  private readonly open = new Map<Consumer, boolean>();
  /** Open subscriptions with a pattern; the topics stored to since one was open. */
  private patterned = 0;
  private readonly published = new Set<string>();

  constructor(
    private readonly driver: Driver,
    /** The bus' maxPayloadBytes, also applied to what is read. */
    private readonly maxBytes: number,
    private readonly log: Logger,
    /** Publishes a handler's reply to a request (see requests.ts). */
    private readonly reply: Reply,
    /** What the bus' closes know of a store that stopped answering (closing.ts). */
    private readonly silence: StoreSilence,
    /** What keyed subscriptions' durable requests use of the bus (see requests.ts RequestLink). */
    private readonly link: RequestLink,
  ) {}

  /** Starts a Consumer; resolves once its group exists (see Bus.subscribe). */
  async subscribe(options: SubscribeOptions, handler: Handler): Promise<Subscription> {
    const so = checkSubscribe(options, handler);
    const c = new Consumer(this.driver, so, this.maxBytes, handler, this.log, (x) => this.remove(x), this.reply, this.silence, this.link);
    this.add(c, so.types);
    try {
      await c.start();
    } catch (err) {
      this.remove(c);
      await c.close({ drain: false });
      throw err;
    }
    return c;
  }

  private add(c: Consumer, types: string[]): void {
    const pattern = types.some((t) => t.endsWith('*'));
    this.open.set(c, pattern);
    if (pattern) this.patterned++;
  }

  private remove(c: Consumer): void {
    if (this.open.get(c)) this.patterned--;
    this.open.delete(c);
  }

  /** Entries just stored by this bus: pattern subscriptions hear of topics new to it (Consumer.topicPublished). */
  stored(entries: AppendEntry[]): void {
    if (this.patterned === 0) return;
    for (const e of entries) {
      if (this.published.has(e.topic)) continue;
      if (this.published.size >= PUBLISHED_KEPT) this.published.clear(); // bounded; a topic told twice is harmless
      this.published.add(e.topic);
      for (const c of this.open.keys()) c.topicPublished(e.topic);
    }
  }

  closeAll(): Promise<unknown> {
    return Promise.all([...this.open.keys()].map((c) => c.close()));
  }
}
