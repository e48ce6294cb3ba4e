import { assign, fromPromise, setup } from 'xstate';
import { describe, stackOf } from '../bus/thrown.js';

/**
 * One agent's lifecycle, as an XState v5 machine:
 *
 *   idle -> starting -> running -> stopping -> stopped
 *             |            |
 *             +-> crashing -> crashed -> restarting -(after delay)-> starting
 *                                    \-> failed   (the supervisor gave up)
 *
 * The machine only tracks state and runs the three effects the supervisor provides (`start`,
 * `stop`, `teardown`); what to do after a crash is the supervisor's decision, sent as RESTART,
 * GIVE_UP or STOP. Every effect's error is handled by a transition, so the actor itself never
 * errors (an unobserved actor error would be rethrown in a timer and kill the process).
 */
export interface LifecycleContext {
  agent: string;
  restarts: number;
  lastError: string | null;
  /** The last error's stack (see stackOf), null when it was not an Error. */
  lastStack: string | null;
  /** Delay of the pending restart, ms. */
  delay: number;
  /** Why the agent last stopped: asked to (`shutdown`) or by itself (`normal`, from ctx.exit()). */
  exit: 'none' | 'shutdown' | 'normal';
}

export type LifecycleEvent =
  | { type: 'START' }
  | { type: 'STOP' }
  | { type: 'EXIT' }
  | { type: 'CRASH'; error: unknown }
  | { type: 'RESTART'; delay: number }
  | { type: 'GIVE_UP' };

/** Every state of the machine below, once (metrics report each; test/structure.test.ts checks the machine has exactly these). */
export const LIFECYCLE_STATES = ['idle', 'starting', 'running', 'stopping', 'stopped', 'crashing', 'crashed', 'restarting', 'failed'] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

const unprovided = fromPromise<void>(async () => {
  throw new Error('lifecycle effect not provided');
});

export const lifecycle = setup({
  types: {
    context: {} as LifecycleContext,
    events: {} as LifecycleEvent,
    input: {} as { agent: string },
  },
  actors: { start: unprovided, stop: unprovided, teardown: unprovided },
  actions: {
    // CRASH events and the effects' error events both carry `error`.
    recordError: assign({
      lastError: ({ event }) => describe((event as unknown as { error: unknown }).error),
      lastStack: ({ event }) => stackOf((event as unknown as { error: unknown }).error) ?? null,
    }),
    restart: assign({
      delay: ({ event }) => (event.type === 'RESTART' ? event.delay : 0),
      restarts: ({ context }) => context.restarts + 1,
    }),
    shutdown: assign({ exit: 'shutdown' as const }),
  },
  delays: { restartDelay: ({ context }) => context.delay },
}).createMachine({
  id: 'agent',
  context: ({ input }) => ({ agent: input.agent, restarts: 0, lastError: null, lastStack: null, delay: 0, exit: 'none' }),
  initial: 'idle',
  states: {
    idle: { on: { START: 'starting', STOP: 'stopped' } },
    starting: {
      entry: assign({ exit: 'none' as const }),
      invoke: { src: 'start', onDone: 'running', onError: { target: 'crashing', actions: 'recordError' } },
      on: {
        STOP: { target: 'stopping', actions: 'shutdown' },
        CRASH: { target: 'crashing', actions: 'recordError' },
      },
    },
    running: {
      on: {
        STOP: { target: 'stopping', actions: 'shutdown' },
        EXIT: { target: 'stopping', actions: assign({ exit: 'normal' as const }) },
        CRASH: { target: 'crashing', actions: 'recordError' },
      },
    },
    // onStop throwing still ends in stopped (the stop happened); the error is kept and logged.
    stopping: { invoke: { src: 'stop', onDone: 'stopped', onError: { target: 'stopped', actions: 'recordError' } } },
    crashing: { invoke: { src: 'teardown', onDone: 'crashed', onError: 'crashed' } },
    crashed: {
      on: {
        RESTART: { target: 'restarting', actions: 'restart' },
        GIVE_UP: 'failed',
        STOP: { target: 'stopped', actions: 'shutdown' },
      },
    },
    restarting: {
      after: { restartDelay: 'starting' },
      on: { STOP: { target: 'stopped', actions: 'shutdown' } },
    },
    stopped: {
      on: {
        START: 'starting',
        RESTART: { target: 'restarting', actions: 'restart' },
      },
    },
    failed: {},
  },
});
