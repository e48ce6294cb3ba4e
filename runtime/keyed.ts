/**
 * What the runtime adds to keyed subscriptions for agents: publish ids derived from the delivery
 * (guarantee 4: a redelivered handler republishes the same ids, and the store's dedup window keeps
 * one of each), an XState machine per key (`static machine`), and the scratch state a replay runs on.
 */
import { createActor, type AnyStateMachine } from 'xstate';
import type { DeliveryContext } from '../bus/contract.js';
import { stableId, type CloudEvent } from '../bus/event.js';
import type { KeyOf, KeyedDeliveryContext } from '../bus/keyed/contract.js';
import type { KeyedContext } from '../agents/base.js';
import { keyOf } from '../bus/keyed/owner.js';
import { invalid } from '../bus/errors.js';
import { checkStep, decodeStep, encodeStep } from '../bus/keyed/steps.js';

/**
 * The id of the `n`-th event a keyed handler publishes while handling `event` in `group`: the same
 * on every delivery of that event, on any host (so it is stored once within the dedup window).
 */
export function derivedId(group: string, event: CloudEvent, n: number): string {
  return stableId(group, event.source, event.id, n);
}

/** The source a keyed agent publishes with: the agent's, not the host's, so a redelivery on another host dedups. */
export function keyedSource(agent: string): string {
  return `/agentbus/keyed/${agent}`;
}

export function isKeyed(d: DeliveryContext): d is KeyedDeliveryContext {
  return typeof (d as Partial<KeyedDeliveryContext>).key === 'string';
}

/**
 * Runs `event` through the key's actor: restored from the persisted snapshot in `ctx.state` (a
 * fresh actor when there is none), sent `{ type, data, event }`, and stopped; its persisted snapshot
 * becomes the state and what it emitted is published, in order, with the key as subject. A machine that errors throws its
 * error (a failed delivery: the key keeps its state, the event is retried).
 */
export async function runMachine(machine: AnyStateMachine, event: CloudEvent, ctx: KeyedContext<unknown>): Promise<void> {
  const snapshot = ctx.state ?? undefined;
  const actor = createActor(machine, { snapshot: snapshot as never, input: { key: ctx.key } });
  const emitted: Array<{ type: string; data?: unknown }> = [];
  actor.on('*', (e: { type: string; data?: unknown }) => void emitted.push(e));
  let failure: unknown;
  actor.subscribe({ error: (err) => (failure = err) });
  actor.start();
  actor.send({ type: event.type, data: event.data, event });
  const after = actor.getSnapshot() as { status: string; error?: unknown };
  const persisted = actor.getPersistedSnapshot();
  actor.stop();
  if (failure !== undefined || after.status === 'error') throw failure ?? after.error;
  // Emitted events are about the key: its subject, unless the machine names one (emit({ type, data, subject })).
  for (const e of emitted) await ctx.publish(e.type, e.data ?? null, { subject: (e as { subject?: string }).subject ?? ctx.key });
  ctx.state = persisted;
}

/** A replay's keys' state: starts from initialState, never the live state in the store. */
export class ScratchStates {
  private readonly states = new Map<string, unknown>();
  constructor(
    private readonly key: KeyOf,
    private readonly initial: ((key: string) => unknown) | undefined,
  ) {}

  /** A keyed context over `d` for `event`, or null for an event without a key (skipped by the replay). */
  context(event: CloudEvent, d: DeliveryContext): (KeyedDeliveryContext & { commit(): void }) | null {
    const key = keyOf(this.key, event);
    if (key === null) return null;
    const states = this.states;
    const state = states.has(key) ? structuredClone(states.get(key)) : (this.initial?.(key) ?? null);
    return {
      get attempt() { return d.attempt; },
      get position() { return d.position; },
      get group() { return d.group; },
      get consumer() { return d.consumer; },
      get signal() { return d.signal; },
      deadLetter: (reason: string) => d.deadLetter(reason),
      retryIn: (ms: number) => d.retryIn(ms),
      reply: (value: unknown) => d.reply(value),
      // A replay runs handlers over stored history only: nothing arrives to wait for.
      waitFor: () => Promise.reject(invalid('INVALID_OPTION', `ctx.waitFor cannot run in a replay (key ${JSON.stringify(key)}): the replay runs stored events only, nothing arrives to wait for`)),
      // A replay asks nothing durably: an agent's ctx.request in a replay is bus.request (runtime/instance.ts).
      request: () => Promise.reject(invalid('INVALID_OPTION', `a durable ctx.request cannot run in a replay (key ${JSON.stringify(key)}): the replay records nothing for a reply to be routed to`)),
      // A replay records nothing (no size limit then): a step runs its fn, and returns its result as a live run would (its JSON round trip).
      step: async <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
        checkStep(name, fn);
        return decodeStep<T>(encodeStep(name, await fn(), Number.POSITIVE_INFINITY));
      },
      key,
      state,
      commit() {
        states.set(key, this.state ?? null);
      },
    };
  }
}
