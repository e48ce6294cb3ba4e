// A subscription's scheduler: each delivery read is held, decided on (decide.ts) and carried out —
// started when a slot is free, queued behind its subject's lane or for a slot (read ahead),
// acknowledged (batched), retried or dead-lettered (retries.ts). Its handler is called by
// handler-call.ts, which hands the settled call back here.
import type { Handler } from './contract.js';
import type { Delivery } from './driver.js';
import { asTopic } from './event.js';
import type { Held } from './held.js';
import { onArrival, type Decision } from './decide.js';
import { NO_KEY } from './keyed/contract.js';
import type { ConsumerState } from './consumer-state.js';
import { HandlerCall, type Reply, type Settling } from './handler-call.js';
import { Retries, type Rescheduling } from './retries.js';

export class Scheduler implements Settling, Rescheduling {
  private readonly call: HandlerCall;
  private readonly retries: Retries;
  /** Started, their handler not yet called: see schedule(). */
  private scheduled: Held[] = [];

  constructor(
    private readonly s: ConsumerState,
    handler: Handler,
    reply: Reply,
  ) {
    this.call = new HandlerCall(s, handler, reply, this);
    this.retries = new Retries(s, this, reply);
  }

  /**
   * Dispatches a batch. Awaited types (waitsFor) go last, so an awaited event read (or taken over)
   * with the delivery whose handler will wait for it queues behind that delivery in its key's lane,
   * where the wait finds it, instead of running first as an ordinary event.
   */
  dispatchAll(ds: Delivery[]): void {
    const waited = this.s.o.waitsFor;
    if (waited.length === 0) {
      for (const d of ds) this.dispatch(d);
      return;
    }
    for (const d of ds) if (!waited.includes(d.topic)) this.dispatch(d);
    for (const d of ds) if (waited.includes(d.topic)) this.dispatch(d);
  }

  private dispatch(d: Delivery): void {
    const s = this.s;
    // Handlers are chosen by type: the topic decides it, never the (forgeable) stored envelope.
    if (d.event !== null) d.event = asTopic(d.event, d.topic);
    const h: Held = { d, subject: undefined, state: 'new', gen: s.gen(), prev: null, next: null, held: false };
    s.held.add(h);
    // A reply to one of the group's durable requests is recorded, never run: it cannot have failed,
    // so its delivery count (a reader that died before recording it) is no reason to dead-letter it.
    if (d.event !== null && s.requests !== null && d.topic === s.requests.topic) return this.admit(h);
    this.perform(h, onArrival(d, s.o.maxAttempts));
  }

  /** Carries out a decision about a held delivery; `error` is what its handler threw, if it did. */
  perform(h: Held, decision: Decision, error?: unknown): void {
    switch (decision.act) {
      case 'run':
        return this.admit(h);
      case 'ack':
        this.drop(h);
        // Keyed: acknowledged by the owner's next commit, with the key's state (accept()).
        return this.s.keyed === null ? this.s.acks.add(h.d) : undefined;
      case 'retry':
        return this.retries.later(h, decision.delayMs, error);
      case 'dead_letter':
        h.state = 'running';
        return void this.retries.deadLetter(h, decision.reason, decision.error, decision.stack);
    }
  }

  /** A delivery that may run: started now, or queued behind the running one of its subject. */
  private admit(h: Held): void {
    const s = this.s;
    if (s.keyed !== null) {
      // A reply to one of the group's durable requests (keyed/requests.ts): it has no key; recorded for the run that asked.
      if (h.d.topic === s.requests!.topic) return s.requests!.offer(h);
      const key = s.keyed.owner.keyOf(h.d.event!);
      if (key === null) return this.perform(h, { act: 'dead_letter', reason: NO_KEY, error: `no key: the event has no ${s.o.key === 'subject' ? 'subject' : 'key (the key function returned none)'}` });
      h.subject = key;
      // A handler of the key waits for this event (ctx.waitFor): it takes it, past the key's lane.
      if (s.waits!.offer(h, key)) return;
    } else if (s.o.orderBy === 'subject') h.subject = h.d.event!.subject;
    if (h.subject !== undefined && !s.lanes.enter(h.subject, h)) return void (h.state = 'queued');
    this.schedule(h);
  }

  /**
   * The scheduler step, the one place a delivery starts (read, next in its lane, or retried): it
   * counts as running at once, so the read loop sees its slot taken, and its handler is called from
   * a microtask (or by the read loop, right after a batch), so handing a lane's next delivery over
   * from inside another's ack never runs a handler within that settling.
   */
  schedule(h: Held): void {
    const s = this.s;
    if (s.running - s.waiting >= s.o.concurrency) {
      h.state = 'queued';
      s.ready.push(h);
      return;
    }
    this.begin(h);
  }

  private begin(h: Held): void {
    h.state = 'running';
    this.s.running++;
    if (this.scheduled.length === 0) {
      this.scheduled = [h]; // a list of one: a push into the emptied list would allocate room for 16
      queueMicrotask(this.runScheduled);
    } else this.scheduled.push(h);
  }

  /** A slot is free: deliveries read ahead take the free slots, oldest first. */
  fill(): void {
    const s = this.s;
    if (s.readyAt === s.ready.length || s.closing) return;
    while (s.readyAt < s.ready.length && s.running - s.waiting < s.o.concurrency) this.begin(s.ready[s.readyAt++]);
    if (s.readyAt === s.ready.length) [s.ready, s.readyAt] = [[], 0];
  }

  /** Calls the handlers of the deliveries started since the last call (begin). */
  readonly runScheduled = (): void => {
    if (this.scheduled.length === 0) return;
    const hs = this.scheduled;
    this.scheduled = [];
    for (const h of hs) this.call.run(h);
  };

  /** Forgets a delivery; its lane hands the next delivery of its subject to the scheduler (schedule). */
  drop(h: Held): void {
    const s = this.s;
    s.held.delete(h);
    if (h.subject === undefined) return;
    const next = s.lanes.leave(h.subject, h);
    if (next !== undefined && !s.closing) this.schedule(next);
  }
}
