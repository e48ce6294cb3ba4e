// The two decisions (decide.ts) about a failed delivery that take time: a retry held in hand until
// its delay passes (its attempt counted in the store first), and a dead letter stored before the
// delivery is let go.
import type { Held } from './held.js';
import { errForLog } from './thrown.js';
import type { ConsumerState } from './consumer-state.js';
import type { Reply } from './handler-call.js';
import { namesType } from './requests.js';

/** What a retry or a dead letter hands back to the scheduler (scheduler.ts). */
export interface Rescheduling {
  /** Starts `h` again (or queues it for a free slot). */
  schedule(h: Held): void;
  /** Forgets `h`; its lane moves on. */
  drop(h: Held): void;
}

export class Retries {
  constructor(
    private readonly s: ConsumerState,
    private readonly next: Rescheduling,
    /** Tells a requester its request was dead-lettered (handler-call.ts Reply). */
    private readonly reply: Reply,
  ) {}

  /**
   * Holds `h` for `delay` ms, then runs it again. Waiting, it holds no concurrency slot (the read
   * loop pauses past RETRY_WAIT_FACTOR x concurrency of them, read-loop.ts).
   */
  later(h: Held, delay: number, error: unknown): void {
    const s = this.s;
    if (s.log.isLevelEnabled('debug')) {
      s.log.debug({ group: s.group, type: h.d.topic, id: h.d.event?.id, attempt: h.d.attempts, delay, err: errForLog(error) }, 'delivery failed, retrying');
    }
    s.retrying++;
    h.state = 'waiting';
    h.timer = setTimeout(() => void this.retry(h), delay);
  }

  private async retry(h: Held): Promise<void> {
    const s = this.s;
    h.timer = undefined;
    s.retrying--;
    if (s.closing) return s.wake();
    try {
      await s.driver.leases.countAttempt(s.group, h.d);
      h.d.attempts++;
      this.next.schedule(h);
    } catch (err) {
      // The attempt could not be counted: leave the lease to expire so the store stays the authority.
      s.storeError('count attempt', err);
      this.next.drop(h);
    }
    s.wake();
  }

  /** Stores `h` as a dead letter (and reports it, outcomes.ts), then forgets it; a request's requester is told (failureReply). */
  async deadLetter(h: Held, reason: string, error: string, stack?: string): Promise<void> {
    const stored = await this.s.out.deadLetter(h.d, reason, error, stack);
    this.next.drop(h);
    this.s.wake();
    if (stored) this.failureReply(h, reason, error);
  }

  /**
   * A request dead-lettered by a group that names its type fails its requester now, not after its
   * timeoutMs; so does one whose handler's call was marked as answering it (an agent's own
   * `on<Type>` method reached through a pattern, requests.ts answering). Not otherwise by a group
   * that took it through a pattern: that one never answers it unasked (requests.ts answers), so
   * neither does its failure. Sent after the delivery is forgotten (its subject's next event does
   * not wait for it); a close waits for it (consumer-close.ts).
   */
  private failureReply(h: Held, reason: string, error: string): void {
    const s = this.s;
    const req = h.d.event;
    if (req?.replyto === undefined || !(h.answers === true || namesType(s.o.types, req.type))) return;
    const sent: Promise<unknown> = this.reply(req, s.group, undefined, { reason, error })
      .catch((err) => s.log.warn({ group: s.group, type: req.type, id: req.id, err: errForLog(err) }, 'could not tell the requester its request was dead-lettered: it fails at its timeoutMs instead'))
      .finally(() => s.failureReplies.delete(sent));
    s.failureReplies.add(sent);
  }
}
