/**
 * A subscription made while a bus started without Redis has not reached it yet (start.ts): it
 * resolves at once, so a host's agents start and stop as usual, and its consumer starts once Redis
 * answered and passed the start checks, before the spool is forwarded: events published meanwhile
 * (spooled) reach it, as events published after any subscribe resolved do. A start that fails then
 * (Redis lost again) is logged and tried again, 1 s doubling to 30 s apart, until it is closed.
 */
import type { Logger } from 'pino';
import type { Bus, Handler, KeyedStats, Subscription, SubscribeOptions } from '../../bus/contract.js';
import { checkSubscribe } from '../../bus/subscriptions.js';
import { errForLog } from '../../bus/thrown.js';

const RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

export class PendingSubscription implements Subscription {
  readonly group: string;
  readonly consumer: string;
  readonly keyedStats?: () => KeyedStats | null;
  private real: Subscription | null = null;
  private starting: Promise<void> | null = null;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;
  /** Ends start()'s promise when the subscription closes between tries. */
  private stopTrying: (() => void) | null = null;

  /** Checks the options now (a bad one rejects subscribe at once, as with Redis up). */
  constructor(
    private readonly bus: Bus,
    private readonly options: SubscribeOptions,
    private readonly handler: Handler,
    private readonly log: Logger,
  ) {
    const so = checkSubscribe(options, handler);
    this.group = so.group;
    this.consumer = so.consumer;
    // The consumer name drawn here is the one the real subscription uses.
    this.options = { ...options, consumer: so.consumer };
    if (options.key !== undefined) this.keyedStats = () => this.real?.keyedStats?.() ?? null;
  }

  /**
   * Redis answered and passed the checks: subscribe for real. Resolves once it did (or the
   * subscription was closed), not at a failed try: the gate forwards the spool only after that
   * (bounded by its own wait), else a group made at `latest` by a later try skips what was spooled.
   * A failed try is logged and made again after 1 s, doubling to 30 s.
   */
  start(): Promise<void> {
    this.starting ??= new Promise<void>((resolve) => {
      this.stopTrying = resolve;
      const attempt = (wait: number) => {
        if (this.closed) return resolve();
        this.bus.subscribe(this.options, this.handler).then(
          (sub) => {
            if (this.closed) void sub.close({ drain: false });
            else this.real = sub;
            resolve();
          },
          (err) => {
            if (this.closed) return resolve();
            this.log.error({ group: this.group, consumer: this.consumer, err: errForLog(err) }, `subscription of ${this.group} could not start once Redis answered; tried again in ${wait / 1000} s`);
            this.retry = setTimeout(() => attempt(Math.min(wait * 2, MAX_RETRY_MS)), wait);
          },
        );
      };
      attempt(RETRY_MS);
    });
    return this.starting;
  }

  async close(options?: { drain?: boolean | undefined }): Promise<void> {
    this.cancel();
    await this.starting;
    await this.real?.close(options);
  }

  /** The bus is closing (it closes a started consumer itself): start nothing from now on. */
  cancel(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.stopTrying?.(); // a try in flight closes what it gets
  }
}
