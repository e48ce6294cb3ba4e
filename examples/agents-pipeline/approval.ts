// The same pipeline's review step, written as an XState v5 machine (`static machine`): one actor
// per task, each event sent to it, its persisted snapshot stored as the task's state, and what it
// emits published. A completed task waits for a person's `review.decided` ({ approved, by }).
import { assign, emit, setup } from 'xstate';
import { BaseAgent } from '../../index.js';

type Decided = { approved: boolean; by: string };

export const approvalMachine = setup({
  types: {
    input: {} as { key: string },
    context: {} as { task: string; goal: string | null; by: string | null },
    events: {} as { type: 'task.completed'; data: { goal: string } } | { type: 'review.decided'; data: Decided },
    emitted: {} as { type: 'review.requested'; data: { task: string; goal: string } } | { type: 'task.approved' | 'task.rejected'; data: { task: string; by: string } },
  },
}).createMachine({
  id: 'approval',
  // The runtime starts a task's actor with its key as input; afterwards it is restored from the state.
  context: ({ input }) => ({ task: input.key, goal: null, by: null }),
  initial: 'waiting',
  states: {
    waiting: {
      on: {
        'task.completed': {
          target: 'in_review',
          actions: [assign({ goal: ({ event }) => event.data.goal }), emit(({ context, event }) => ({ type: 'review.requested' as const, data: { task: context.task, goal: event.data.goal } }))],
        },
      },
    },
    in_review: {
      on: {
        'review.decided': [
          { guard: ({ event }) => event.data.approved === true, target: 'approved', actions: [assign({ by: ({ event }) => event.data.by }), emit(({ context, event }) => ({ type: 'task.approved' as const, data: { task: context.task, by: event.data.by } }))] },
          { target: 'rejected', actions: [assign({ by: ({ event }) => event.data.by }), emit(({ context, event }) => ({ type: 'task.rejected' as const, data: { task: context.task, by: event.data.by } }))] },
        ],
      },
    },
    // Not `final`: a late or repeated decision is sent to a live actor and simply changes nothing.
    approved: {},
    rejected: {},
  },
});

export class Approval extends BaseAgent {
  static subscriptions = ['task.completed', 'review.decided'];
  static key = 'subject';
  static machine = approvalMachine;
  static options = { concurrency: 64, claimIdleMs: Number(process.env.PIPELINE_CLAIM_MS ?? 10_000) };
}
