/**
 * The Redis store's key layout (which key holds what, and which hash tag puts it on its topic's
 * cluster slot) and stream-id arithmetic: parsing, checking, comparing and stepping back ids.
 */
import { createHash } from 'node:crypto';
import { invalid } from '../../bus/errors.js';

/** The largest part of a stream id (`<ms>-<seq>`): Redis' 64 bits unsigned. */
export const MAX_SEQ = '18446744073709551615';

/** Where each kind of key lives. Companion keys use the whole stream key as hash tag: same slot. */
export class Keys {
  readonly topics: string;
  /** Topics this deployment published to: retention trims these only. */
  readonly published: string;
  readonly groups: string;
  /** Topics that ever had delayed events (due sets to look at); never shrinks, see due.ts. */
  readonly dueTopics: string;
  /** How many topics were ever removed from `topics` (reply topics, Admin.dropTopic): with SCARD, tells a changed set from one of the same size. */
  readonly topicsRemoved: string;
  constructor(readonly prefix: string) {
    // Types cannot contain braces, so these never collide with a topic.
    this.topics = `${prefix}{agentbus}:topics`;
    this.published = `${prefix}{agentbus}:published`;
    this.groups = `${prefix}{agentbus}:groups`;
    this.dueTopics = `${prefix}{agentbus}:due-topics`;
    this.topicsRemoved = `${prefix}{agentbus}:topics-removed`;
  }
  stream = (type: string) => this.prefix + type;
  dlq = (type: string) => `{${this.prefix}${type}}:dlq`;
  /** Delayed events of a topic not yet due: a sorted set scored by due time (scripts/due.ts). */
  due = (type: string) => `{${this.prefix}${type}}:due`;
  /** Names of a topic's pending named delayed events, beside its due set (scripts/due.ts). */
  dueNames = (type: string) => `{${this.prefix}${type}}:due-names`;
  /**
   * A cancel's dedup marker (DriverDue.cancel `once`): a hash of `[source, id]` as dedup's. Not
   * beside a due set: a cancel is by name, on every topic (due.ts).
   */
  cancelMarker = (source: string, id: string) => `${this.prefix}{agentbus}:cancel:${createHash('sha256').update(JSON.stringify([source, id])).digest('hex')}`;
  /** Dead letters per group (hash field = group), kept by the scripts that add and remove them. */
  dlqCount = (type: string) => `{${this.prefix}${type}}:dlqcount`;
  /** Live consumers of a group: a sorted set of consumer names scored by their last heartbeat. */
  alive = (group: string) => `${this.prefix}{agentbus}:alive:${group}`;
  retry = (type: string, group: string) => `{${this.prefix}${type}}:retry:${group}`;
  /**
   * The marker of a caller id: a hash of `[source, id]` as JSON, so no two (source, id) pairs share a
   * key (`a|b` + `c` and `a` + `b|c` did while the key was `<source>|<id>`) and its length is bounded.
   */
  dedup = (type: string, source: string, id: string) =>
    `{${this.prefix}${type}}:dedup:${createHash('sha256').update(JSON.stringify([source, id])).digest('hex')}`;
  /**
   * Keyed state of a group (state.ts): every key of it shares the hash tag `{agentbus:<group>}`, so
   * one Lua script reaches the owner and every record of the group on one cluster slot. Group names
   * cannot contain braces (options.ts), so the tag ends at the first `}` whatever the state key.
   */
  stateTag = (group: string) => `${this.prefix}{agentbus:${group}}`;
  owner = (group: string) => `${this.stateTag(group)}:owner`;
  epoch = (group: string) => `${this.stateTag(group)}:epoch`;
  state = (group: string, key: string) => `${this.stateTag(group)}:state:${key}`;
  /** A keyed handler's durable wait (bus/keyed/waits.ts), in the group's slot. */
  wait = (group: string, id: string) => `${this.stateTag(group)}:wait:${id}`;
  /**
   * The wait and step records of one key of a group (scripts/waits.ts): a sorted set of their ids
   * scored by the epoch ms they expire at, in the group's slot. Not under `wait:`, which a SCAN of a
   * group's records matches.
   */
  waitIndex = (group: string, key: string) => `${this.stateTag(group)}:waitkey:${key}`;
  /**
   * Which of the group's owners indexed their records (scripts/state.ts ownGroup, scripts/waits.ts):
   * a hash `owner` (the last epoch this version took), `since` (the first epoch of this version's
   * current unbroken run of owners), `scanned` (the latest epoch a scan indexed the group under).
   */
  indexEpochs = (group: string) => `${this.stateTag(group)}:index-epochs`;
}

/** Dead-letter ids are `<type>/<entry id>`: types cannot contain a slash. */
export function parseDlId(id: string): { type: string; entry: string } | null {
  const i = id.lastIndexOf('/');
  if (i <= 0 || !/^\d+-\d+$/.test(id.slice(i + 1)) || id.slice(i + 1).split('-').some((p) => BigInt(p) > BigInt(MAX_SEQ))) return null;
  return { type: id.slice(0, i), entry: id.slice(i + 1) };
}

/** A stream id `<ms>[-<seq>]` whose parts each fit Redis' 64 bits unsigned. */
export function checkId(position: string, name: string): string {
  if (!/^\d+(-\d+)?$/.test(position)) throw invalid('INVALID_OPTION', `invalid ${name} position ${JSON.stringify(position)}: a Redis position is a stream id (<ms>-<seq>)`);
  if (position.split('-').some((part) => BigInt(part) > BigInt(MAX_SEQ))) {
    throw invalid('INVALID_OPTION', `invalid ${name} position ${JSON.stringify(position)}: each part of a stream id is at most ${MAX_SEQ}`);
  }
  return position;
}

/** The stream id just before `id`. */
export function before(id: string): string {
  const [ms, seq = '0'] = id.split('-');
  if (BigInt(seq) > 0n) return `${ms}-${BigInt(seq) - 1n}`;
  return BigInt(ms) > 0n ? `${BigInt(ms) - 1n}-${MAX_SEQ}` : '0';
}

/** Stream ids compare as (ms, seq) pairs of integers of up to 64 bits. */
export function compareIds(a: string, b: string): number {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm) || BigInt(as) - BigInt(bs);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}
