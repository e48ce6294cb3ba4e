// A subscription's close: stop reading, drain, then its last store calls, bounded (closing.ts).
import { BoundedSteps, CLOSE_STORE_MS, settlesBy } from './closing.js';
import type { ConsumerState } from './consumer-state.js';

/**
 * Stops reading, drains (up to drainTimeoutMs; `drain` false: not at all), then makes its last
 * store calls (BoundedSteps): together they wait CLOSE_STORE_MS at most, so a store that does not
 * answer (Redis down, its command connection retrying for over a minute) cannot hold the close
 * longer than drainTimeoutMs + CLOSE_STORE_MS. What could not be done is logged once (and
 * s.gaveUpOnStore set); none of it loses an event: a delivery not acknowledged or not given back is
 * delivered again after claimIdleMs. Handlers still running are abandoned (their signal aborted).
 */
export async function shutdown(s: ConsumerState, drain: boolean): Promise<void> {
  s.closing = true;
  s.topics.stop();
  s.stopRead.abort();
  s.wake();
  const deadline = Date.now() + (drain ? s.o.drainTimeoutMs : 0);
  // The loop ends at once (its read is aborted) unless a store call of its own holds it (a keyed
  // group's lease or commit in an outage): waited for here within the drain, and again below.
  await settlesBy(s.loopDone, Math.min(deadline, Date.now() + CLOSE_STORE_MS));
  if (drain && s.running > 0) {
    // Handlers waiting in ctx.waitFor or for a durable request's reply are not waited for: they are
    // given up below, their deliveries given back to the group (the next owner waits on, up to the
    // recorded deadline).
    while (s.running - s.parked.size > 0 && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        s.wakeUp = resolve;
        setTimeout(resolve, Math.min(50, Math.max(0, deadline - Date.now())));
      });
    }
  }
  const budget = await s.silence.budget();
  const steps = new BoundedSteps(budget);
  await steps.step("the read loop's last store call", () => s.loopDone);
  s.held.cancelRetries();
  // Not yet started (queued behind a subject) or waiting for a retry: back to the group now.
  const notRunning = drain ? s.held.notRunning() : [];
  if (notRunning.length > 0) await steps.step(`give back ${notRunning.length} held deliveries`, () => s.held.release(notRunning));
  // Handlers parked in ctx.waitFor (for an approval, for days): a stop is not a failed attempt of
  // theirs. Their deliveries go back uncounted, at once, so a deploy neither uses up maxAttempts
  // nor waits out claimIdleMs; the re-run finds its wait's record and waits on to the same deadline.
  const parked = drain ? [...s.parked.keys()] : [];
  if (s.running > 0 || !drain) {
    s.abandoned = true;
    s.handlers.abort(new Error('subscription closed'));
  }
  if (parked.length > 0) await steps.step(`give back ${parked.length} deliveries whose handlers wait (ctx.waitFor)`, () => s.held.release(parked));
  for (const t of s.timers) clearInterval(t);
  await steps.step('the last heartbeat', () => s.beat); // a beat landing after forget() would count this consumer again
  if (s.failureReplies.size > 0) await steps.step(`tell ${s.failureReplies.size} requesters their requests were dead-lettered`, () => Promise.all(s.failureReplies));
  if (s.acks.busy) await steps.step(`acknowledge handled deliveries (${s.acks.pending} not sent yet)`, () => s.acks.flush());
  if (s.keyed !== null) {
    const owner = s.keyed.owner;
    await steps.step(`commit the keyed group's state and acknowledgements (${owner.uncommitted} uncommitted)`, () => owner.flush());
    await steps.step("release the keyed group's lease", () => owner.release());
  }
  // Consumer names change with every host process: without this, stores collect dead ones forever.
  if (s.running === 0) await steps.step(`forget consumer ${s.consumer}`, () => s.driver.groups.forget(s.group, s.consumer, s.topics.list).catch((err) => s.storeError('forget', err)));
  if (steps.notDone.length > 0) {
    // The calls left behind fail or finish on their own (the bus' close disconnects): said here once.
    s.gaveUpOnStore = true;
    s.silence.gaveUp();
    const why = budget === 0 ? 'it has not answered since an earlier close gave up on it' : `no answer within ${CLOSE_STORE_MS} ms`;
    s.log.warn(
      { group: s.group, consumer: s.consumer, notDone: steps.notDone, waitedMs: budget },
      `subscription closed without waiting for the store (${why}): not done: ${steps.notDone.join('; ')}. ` +
        `Deliveries not acknowledged are delivered again after claimIdleMs (${s.o.claimIdleMs} ms): nothing is lost (at least once)`,
    );
  }
}
