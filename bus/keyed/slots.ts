/**
 * A keyed subscription's parts in its consumer (consumer-state.ts): the tenure (tenure.ts), the
 * waits (waits.ts), the steps (steps.ts) and the durable requests (requests.ts) wired to the consumer's state, and how they count there: a handler parked in
 * ctx.waitFor gives its concurrency slot up (its key's queued deliveries take none either, see
 * read-loop.ts), one waiting for a durable request's reply keeps it, and a tenure that ends forgets
 * everything the consumer holds.
 */
import type { KeyedStats } from '../contract-delivery.js';
import type { Delivery } from '../driver.js';
import { keyedReplyTopic, matches } from '../event.js';
import type { Held } from '../held.js';
import { SubjectLanes } from '../lanes.js';
import { OwnershipLostError } from '../errors.js';
import { sleep, type HandlerClock } from '../call.js';
import type { StateStore } from '../state.js';
import type { ConsumerState } from '../consumer-state.js';
import type { KeyOf } from './contract.js';
import { KeyedTenure } from './tenure.js';
import { KeyedWaits } from './waits.js';
import { KeyedSteps } from './steps.js';
import { KeyedRequests } from './requests.js';
import { ReplyReads } from './reply-reads.js';
import type { RequestLink } from '../requests.js';

/**
 * A wait of the handler of `h` (ctx.waitFor, keyed/waits.ts; with `request`, a durable
 * ctx.request's wait for its reply, keyed/requests.ts), run by `wait`. Meanwhile its timeoutMs clock
 * stops (the wait has its own deadline) and a crash costs no attempt. In ctx.waitFor the handler
 * holds no concurrency slot (`slots.fill()` gives it to a delivery read ahead; an approval may take
 * days and is not work in flight) and its key's queued deliveries take none either (read-loop.ts).
 * Waiting for a request's reply it keeps its slot, as an in-memory request always did: a
 * request out is work in flight at its replier, and `concurrency` bounds how many a group has out.
 * Except a request of a type the group reads itself (readsItself): its reply needs a slot of this
 * group, so it waits as in ctx.waitFor (`request` false), or a group of held slots would deadlock.
 */
export async function waitParked<T>(s: ConsumerState, slots: { fill(): void }, h: Held, key: string, clock: HandlerClock, wait: () => Promise<T>, request = false): Promise<T> {
  const { first, freed } = s.park(h, request);
  // Parked, the delivery is held one attempt down in the store: a crash while waiting (for an
  // approval, for days) is not a failed attempt. Back up once it resumes, so a handler that crashes
  // its process after the wait still runs out of attempts. Not awaited: the wait starts at once.
  if (first) attemptsAt(s, h, h.d.attempts - 1);
  const lanes = s.lanes;
  if (!request) lanes.park(key);
  clock.pause();
  if (freed) slots.fill();
  s.wake();
  try {
    return await wait();
  } finally {
    const { last, freed: now } = s.unpark(h, request);
    // Closing: its delivery is given back uncounted (consumer-close.ts), not to be taken again here.
    if (last && !s.closing) attemptsAt(s, h, h.d.attempts);
    // A request's reply came while a waitFor of the same run goes on: the slot goes back.
    if (now) slots.fill();
    if (!request) lanes.unpark(key);
    clock.resume();
  }
}

/** Whether the group reads `type` itself (one of its types or patterns): a durable request of it waits without its slot (waitParked). */
export function readsItself(s: ConsumerState, type: string): boolean {
  return s.o.types.some((t) => matches(t, type));
}

function attemptsAt(s: ConsumerState, h: Held, attempts: number): void {
  s.driver.leases.setAttempts(s.group, s.consumer, h.d, attempts).catch((err) => s.storeError('attempt count', err));
}

/** A tenure ended (tenure.ts lose): forgets everything held, without a store call. */
export function forgetHeld(s: ConsumerState): void {
  s.waits?.abortAll(new OwnershipLostError('keyed group tenure ended: the wait goes on with the next owner'));
  s.requests?.abortAll(new OwnershipLostError('keyed group tenure ended: the request waits for its reply with the next owner'));
  s.held.clear();
  s.retrying = 0;
  s.lanes = new SubjectLanes<Held>();
  [s.ready, s.readyAt] = [[], 0];
  s.wake();
}

/** What the keyed parts need of their consumer's scheduler (scheduler.ts). */
export interface KeyedScheduling {
  fill(): void;
  drop(h: Held): void;
  dispatchAll(ds: Delivery[]): void;
  runScheduled(): void;
}

/**
 * Makes a keyed subscription's tenure, waits, steps and durable requests (s.keyed, s.waits, s.steps, s.requests) over the
 * store's keyed state, wired to its consumer's state and scheduler.
 */
export function startKeyed(s: ConsumerState, state: StateStore, key: KeyOf, sched: KeyedScheduling, link: RequestLink): void {
  const o = s.o;
  const keyed = new KeyedTenure(state, { ...o, key }, s.log, {
    running: () => s.running,
    closing: () => s.closing,
    idle: () => s.idle(),
    pause: (ms) => sleep(ms, s.stopRead.signal),
    unstart: () => (s.running--, sched.fill(), s.wake()),
    drop: (h) => sched.drop(h),
    forget: () => forgetHeld(s),
    take: (ds) => {
      sched.dispatchAll(ds);
      sched.runScheduled();
    },
    takeMore: async () => {
      // The reply topic, once a previous owner made it (its first durable request): replies there may
      // be pending to that owner's consumer (read, not yet recorded) when it crashed.
      const replies = keyedReplyTopic(o.group);
      if (s.topics.list.includes(replies) || !(await s.driver.log.registered(replies)).includes(replies)) return [];
      await s.topics.take(replies);
      return state.takeOver(o.group, o.consumer, [replies], s.maxBytes);
    },
    storeError: (what, err) => s.storeError(what, err),
  });
  s.keyed = keyed;
  // A delivery a wait or a request took and recorded: acknowledged with the next commit, forgotten.
  const consumed = (h: Held) => {
    s.held.delete(h);
    if (h.gen === keyed.gen) keyed.owner.settle(null, h.d);
    s.wake();
  };
  // One they took but could not record: forgotten unacknowledged (it comes again).
  const dropped = (h: Held) => {
    s.held.delete(h);
    s.wake();
  };
  s.waits = new KeyedWaits({
    group: o.group,
    store: state,
    declared: (type) => o.waitsFor.includes(type) || o.types.some((t) => matches(t, type)),
    queued: (key) => s.lanes.waiting(key),
    unqueue: (key, h) => {
      s.lanes.remove(key, h);
      h.state = 'running';
    },
    consumed,
    dropped,
    storeError: (what, err) => s.storeError(what, err),
  });
  s.steps = new KeyedSteps({ group: o.group, store: state, maxStateBytes: o.maxStateBytes });
  s.requests = new KeyedRequests({
    group: o.group,
    store: state,
    topic: keyedReplyTopic(o.group),
    publish: link.publish,
    request: link.request,
    reading: () => s.topics.take(keyedReplyTopic(o.group)),
    tell: link.tell,
    consumed,
    dropped,
    storeError: (what, err) => s.storeError(what, err),
    reads: new ReplyReads(s.driver, o.group, o.consumer),
  });
}

/** The tenure's figures, the waits', the steps' and the requests' (Subscription.keyedStats); null when not keyed. */
export function keyedStats(s: ConsumerState): KeyedStats | null {
  if (s.keyed === null || s.waits === null || s.steps === null || s.requests === null) return null;
  return { ...s.keyed.stats(), waiting: s.parked.size, waitsResumed: s.waits.resumed, waitsTimedOut: s.waits.timedOut, stepsReplayed: s.steps.replayed, requestsReplayed: s.requests.replayed };
}
