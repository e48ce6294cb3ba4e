// bus.keys: the public face of StateStore's inspection calls (see KeyedStates).
import { invalid } from '../errors.js';
import { int } from '../validate.js';
import { STEP, type StateStore, type WaitListing } from '../state.js';
import { decodeStep } from './steps.js';
import type { KeyedStates } from './contract.js';

function checkGroup(group: unknown): string {
  if (typeof group !== 'string' || group === '') throw invalid('INVALID_OPTION', `invalid group ${JSON.stringify(group)}: expected a group (agent) name`);
  return group;
}

function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key === '') throw invalid('INVALID_OPTION', `invalid key ${JSON.stringify(key)}: expected a non-empty string`);
  return key;
}

/** Most keys one `bus.keys.list` returns (its `limit`; `agentbus state ls --limit`). */
export const MAX_STATE_LIST = 10_000;

export function keyedStates(store: StateStore): KeyedStates {
  return {
    async get(group, key) {
      const r = await store.get(checkGroup(group), checkKey(key));
      // A tombstone (state null, kept where acknowledgements are not atomic) is no state.
      return r === null || r.state === 'null' ? null : { key, state: JSON.parse(r.state), version: r.version, updatedAt: new Date(r.updatedAt) };
    },
    async list(group, o = {}) {
      const limit = int('limit', o.limit, 100, 1, MAX_STATE_LIST);
      const rows = await store.list(checkGroup(group), { after: o.after, limit });
      return rows.map((r) => ({ ...r, updatedAt: new Date(r.updatedAt) }));
    },
    remove: (group, keys) => {
      if (!Array.isArray(keys)) throw invalid('INVALID_OPTION', `invalid keys ${JSON.stringify(keys)}: expected an array of keys`);
      return store.remove(checkGroup(group), keys.map(checkKey));
    },
    groups: () => store.groups(),
    async waits(group, o = {}) {
      const rows = await records(store, group, o, false);
      return rows.map((r) => ({ key: r.key, type: r.type, deadline: new Date(r.deadline), matched: r.matched, id: r.id }));
    },
    async steps(group, o = {}) {
      const rows = await records(store, group, o, true);
      return rows.map((r) => ({ key: r.key, name: r.type.slice(STEP.length), recorded: r.result !== null, result: r.result === null ? undefined : decodeStep(r.result), id: r.id }));
    },
  };
}

/** The group's wait records (`steps` false) or step records (true), `options` checked as bus.keys.list checks its own. */
function records(store: StateStore, group: unknown, o: { key?: string | undefined; limit?: number | undefined }, steps: boolean): Promise<WaitListing[]> {
  const limit = int('limit', o.limit, 100, 1, MAX_STATE_LIST);
  const key = o.key === undefined ? undefined : checkKey(o.key);
  return store.listWaits(checkGroup(group), { key, limit, steps });
}
