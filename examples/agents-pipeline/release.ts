// The pipeline's last step, a sign-off written with a durable wait (ctx.waitFor) instead of a machine:
// an approved task has its release notes drafted (a model call, made in a durable step: ctx.step),
// asks a person for a release sign-off and its handler waits for it, keeping the task busy, for up
// to PIPELINE_SIGNOFF_MS. A host dying meanwhile loses nothing: another host runs the handler again
// from its start (its publishes stored once, its notes the ones recorded: not drafted again), and
// the wait resumes with the sign-off recorded for it, or waits on to the same deadline.
//   task.approved -> Release publishes release.requested -> (release.signed { by }) -> task.released
//                                                        -> (no sign-off in time)    -> task.expired
import { BaseAgent, type CloudEvent, type KeyedContext } from '../../index.js';

/** How long a task waits for its sign-off (ms or a duration such as 1d). */
const SIGNOFF = process.env.PIPELINE_SIGNOFF_MS ?? '1d';

export interface Release {
  step: 'released' | 'expired';
  by: string | null;
}

/** Release notes as the model drafts them; `draftedBy`: the process that drafted them (the example's tests check it). */
export interface Notes {
  text: string;
  draftedBy: number;
}

/** A stand-in for a model call: slow, paid, worth making once. */
async function draftNotes(task: string): Promise<Notes> {
  await new Promise((resolve) => setTimeout(resolve, 50));
  return { text: `release notes for ${task}`, draftedBy: process.pid };
}

export class Releaser extends BaseAgent {
  static subscriptions = ['task.approved'];
  /** Read by the group for the waits; a sign-off nobody waits for is acknowledged (no handler needed). */
  static waitsFor = ['release.signed'];
  static key = 'subject';
  static initialState = (): Release | null => null;
  static options = { concurrency: 64, claimIdleMs: Number(process.env.PIPELINE_CLAIM_MS ?? 10_000) };

  async onTaskApproved(_e: CloudEvent<{ task: string; by: string }>, ctx: KeyedContext<Release | null>): Promise<void> {
    if (ctx.state !== null) return; // released or expired already: a repeated approval changes nothing
    // Drafted once: a run of this handler again (after a crash, on another host) gets the recorded notes.
    const notes = await ctx.step('draft-notes', () => draftNotes(ctx.key));
    // Stored once even when this handler runs again after a crash (an id derived from the delivery).
    await ctx.publish('release.requested', { task: ctx.key, notes: notes.text }, { subject: ctx.key });
    ctx.logger.info({ task: ctx.key }, 'waiting for sign-off');
    try {
      const signed = await ctx.waitFor<{ by: string }>('release.signed', { timeout: SIGNOFF, match: (e) => typeof e.data?.by === 'string' && e.data.by !== '' });
      ctx.state = { step: 'released', by: signed.data.by };
      await ctx.publish('task.released', { task: ctx.key, by: signed.data.by, notes }, { subject: ctx.key });
    } catch (err) {
      // By its code: the example may run against another copy of the package than the host's (dist/ vs sources).
      if ((err as { code?: unknown } | null)?.code !== 'WAIT_TIMEOUT') throw err;
      ctx.state = { step: 'expired', by: null };
      await ctx.publish('task.expired', { task: ctx.key }, { subject: ctx.key });
    }
  }
}
