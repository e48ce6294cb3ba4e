/**
 * An agent as the host runs it: the entries given to AgentHost (a class, or one with a restart type,
 * option overrides and a name) checked and resolved into ResolvedAgent before anything starts.
 */
import { agentName, isAgentClass, methodName, RESERVED_METHODS, type AgentClass, type AgentOptions } from '../agents/base.js';
import { invalid, ValidationError } from '../bus/errors.js';
import { checkPattern } from '../bus/event.js';
import type { DeliveryOptions, SubscribeOptions } from '../bus/contract.js';
import type { KeyOf, KeyedStateOptions } from '../bus/keyed/contract.js';
import { KEYED_OPTIONS } from '../bus/keyed/options.js';
import type { AnyStateMachine } from 'xstate';
import { DELIVERY_OPTIONS, intOption, resolveSubscribeOptions, type OptionSpec } from '../bus/options.js';
import { knownKeys, oneOf } from '../bus/validate.js';
import type { RestartType } from './supervisor.js';
import { checkSchedules, type CheckedSchedule } from './schedules.js';

/** An agent as given to the host: its class, or the class with a restart type and option overrides. */
export type AgentEntry = AgentClass | { agent: AgentClass; restart?: RestartType | undefined; options?: AgentOptions | undefined; name?: string | undefined };

export interface ResolvedAgent {
  name: string;
  cls: AgentClass;
  restart: RestartType;
  replicas: number;
  breakerFailures: number;
  /** What the host's subscriptions get besides group, types, consumer and onOutcome (keyed: key and state options too). */
  subscribe: Omit<SubscribeOptions, 'group' | 'types' | 'consumer' | 'onOutcome'>;
  /** A keyed agent's XState machine (`static machine`), run per key instead of handler methods. */
  machine: AnyStateMachine | null;
  /** `static schedules`, checked. */
  schedules: CheckedSchedule[];
}

/**
 * The host's own agent options (documented in AgentOptions, agents/base.ts); an agent's other
 * options are the delivery options, checked as `bus.subscribe` checks them.
 */
export const AGENT_OPTIONS = {
  replicas: intOption(1, 1, 1000),
  breakerFailures: intOption(10, 0, 1_000_000),
} satisfies { [K in Exclude<keyof AgentOptions, keyof DeliveryOptions | keyof KeyedStateOptions>]-?: OptionSpec<unknown> };

/** The keyed state options an agent may set in `static options` (KeyedStateOptions). */
const KEYED_STATE_KEYS = ['maxActiveKeys', 'maxStateBytes', 'stateTtlMs'] as const satisfies ReadonlyArray<keyof typeof KEYED_OPTIONS>;

/** Every key of `static options` (AgentOptions), in the order errors list them. */
const AGENT_OPTION_KEYS = [...Object.keys(DELIVERY_OPTIONS), ...KEYED_STATE_KEYS, ...Object.keys(AGENT_OPTIONS)];

/**
 * Checks an agent before anything starts: a class derived from BaseAgent, valid subscriptions (no
 * exact type whose method name is reserved, see RESERVED_METHODS), a handler for every subscription
 * (its per-type method or `handle`), valid options. Each error
 * names the agent and what is wrong.
 */
export function resolveAgent(entry: AgentEntry): ResolvedAgent {
  const e = isAgentClass(entry) ? { agent: entry } : entry;
  if (e === null || typeof e !== 'object' || !isAgentClass(e.agent)) {
    throw invalid('INVALID_OPTION', `invalid agent ${describeValue(entry)}: expected a class extending BaseAgent, or { agent, restart?, options? }`);
  }
  knownKeys('agent entry', e, ['agent', 'restart', 'options', 'name']);
  const cls = e.agent;
  const name = e.name ?? agentName(cls);
  const where = `agent ${name}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._:\-@]{0,199}$/.test(name)) {
    throw invalid('INVALID_OPTION', `invalid agent name ${JSON.stringify(name)}: expected 1-200 characters of A-Z a-z 0-9 . _ : - @ (it is also the group name)`);
  }
  const subs = cls.subscriptions ?? [];
  if (!Array.isArray(subs)) throw invalid('INVALID_OPTION', `${where}: static subscriptions must be an array of types or patterns, got ${describeValue(subs)}`);
  const proto = cls.prototype as Record<string, unknown>;
  const machine = keyedMachine(cls, where);
  // A machine handles every type it is sent (an event it has no transition for changes nothing).
  const hasHandle = typeof proto.handle === 'function' || machine !== null;
  for (const t of subs) {
    checkPattern(t);
    if (!t.endsWith('*') && RESERVED_METHODS.has(methodName(t))) {
      throw invalid(
        'INVALID_OPTION',
        `${where} subscribes to the type ${t}, whose method name ${methodName(t)} is reserved for the agent's lifecycle (reserved: ${[...RESERVED_METHODS].join(', ')}): ` +
          `rename the type, or subscribe through a pattern (such as ${t}*) and handle it in handle(event, ctx)`,
      );
    }
    if (hasHandle) continue;
    if (t.endsWith('*')) throw invalid('INVALID_OPTION', `${where} subscribes to the pattern ${t} but has no handle(event, ctx) method`);
    if (typeof proto[methodName(t)] !== 'function') {
      throw invalid('INVALID_OPTION', `${where} subscribes to ${t} but has neither a ${methodName(t)}(event, ctx) method nor handle(event, ctx)`);
    }
  }
  // An entry's option set to undefined leaves the class' value, as a missing one does.
  const given = Object.entries(e.options ?? {}).filter(([, v]) => v !== undefined);
  const options: AgentOptions = { ...(cls.options ?? {}), ...Object.fromEntries(given) };
  knownKeys(where, options, AGENT_OPTION_KEYS);
  const { replicas, breakerFailures, ...delivery } = options;
  if (cls.key !== undefined && cls.key !== 'subject' && typeof cls.key !== 'function') {
    throw invalid('INVALID_OPTION', `${where}: static key ${describeValue(cls.key)} is not a key: expected 'subject' or a function (event) => string`);
  }
  if (cls.waitsFor !== undefined && cls.key === undefined) {
    throw invalid('INVALID_OPTION', `${where}: static waitsFor is for keyed agents only (ctx.waitFor): declare static key ('subject' or (event) => string)`);
  }
  if (cls.waitsFor !== undefined && (!Array.isArray(cls.waitsFor) || cls.waitsFor.some((t) => typeof t !== 'string' || t.endsWith('*')))) {
    throw invalid('INVALID_OPTION', `${where}: static waitsFor must be an array of exact event types, got ${describeValue(cls.waitsFor)}`);
  }
  const subscribe: ResolvedAgent['subscribe'] =
    cls.key === undefined ? delivery : { ...delivery, key: cls.key as KeyOf, initialState: cls.initialState, ...(cls.waitsFor ? { waitsFor: [...cls.waitsFor] } : {}) };
  if (cls.key === undefined && KEYED_STATE_KEYS.some((k) => options[k] !== undefined)) {
    throw invalid('INVALID_OPTION', `${where}: ${KEYED_STATE_KEYS.filter((k) => options[k] !== undefined).join(', ')} apply to keyed agents only: declare static key ('subject' or (event) => string)`);
  }
  // Values are checked now, with the bus' own validator, so a bad option fails the host at construction.
  try {
    resolveSubscribeOptions({ group: name, types: subs.length ? [...subs] : ['x'], ...subscribe });
  } catch (err) {
    if (err instanceof ValidationError) throw new ValidationError(err.code, `${where}: ${err.message}`);
    throw err;
  }
  return {
    name,
    cls,
    restart: oneOf(`${where} restart`, e.restart, ['permanent', 'transient', 'temporary'] as const),
    replicas: AGENT_OPTIONS.replicas.resolve(`${where} replicas`, replicas),
    breakerFailures: AGENT_OPTIONS.breakerFailures.resolve(`${where} breakerFailures`, breakerFailures),
    subscribe,
    machine,
    schedules: checkSchedules(where, cls.schedules),
  };
}

/** The agent's `static machine`, checked: an XState machine, on a keyed agent. */
function keyedMachine(cls: AgentClass, where: string): AnyStateMachine | null {
  const m = cls.machine;
  if (m === undefined) return null;
  if (m === null || typeof m !== 'object' || typeof (m as { transition?: unknown }).transition !== 'function') {
    throw invalid('INVALID_OPTION', `${where}: static machine must be an XState v5 machine (createMachine or setup().createMachine), got ${describeValue(m)}`);
  }
  if (cls.key === undefined) throw invalid('INVALID_OPTION', `${where}: static machine runs one actor per key: declare static key ('subject' or (event) => string)`);
  // The key's state is the actor's persisted snapshot: a state of another shape cannot be restored.
  if (cls.initialState !== undefined) {
    throw invalid('INVALID_OPTION', `${where}: static initialState does not go with static machine (the machine's initial state is each key's first state; its context can read the key from input.key)`);
  }
  return m;
}

/**
 * resolveAgent for each entry, then names unique: the name is the consumer group, and two agents in
 * one group would split its events between them. A duplicate is refused with a ValidationError.
 */
export function resolveAgents(entries: AgentEntry[]): ResolvedAgent[] {
  const agents = entries.map(resolveAgent);
  const seen = new Set<string>();
  for (const a of agents) {
    if (seen.has(a.name)) {
      throw invalid('INVALID_OPTION', `two agents are named ${JSON.stringify(a.name)}: agent names (and groups) must be unique in a host; give one another name ({ agent, name })`);
    }
    seen.add(a.name);
  }
  return agents;
}

function describeValue(v: unknown): string {
  if (typeof v === 'function') return `function ${v.name || '(anonymous)'}`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
