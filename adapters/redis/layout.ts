/** How a published event is written to its stream: the three layouts and the `layout` option that picks one per topic. */
import { checkPattern, encodeEvent, type CloudEvent } from '../../bus/event.js';
import { invalid } from '../../bus/errors.js';

/**
 * How an event is written to its stream (see README "Redis entry layout"):
 * - `fields` (default): each CloudEvents attribute is a field of its own, `specversion` first, then
 *   `data` as JSON text: `specversion 1.0 id <id> type <type> source <source> time <time>
 *   [subject ..] [traceparent ..] [dataschema ..] [datacontenttype ..] data <JSON>`. A consumer that
 *   reads `type`, `source` and `data` (seed 003's Python EventStreamConsumer) processes it unchanged.
 * - `flat`: data's top-level keys are the fields (seed 001's `user_wallet 0x.. did_id 0 ...`), after
 *   the attributes, which carry a `ce_` prefix (`ce_specversion` first, `ce_id`, `ce_type`, ...): the
 *   prefix keeps them apart from data keys, so data keys starting with `ce_` are refused. Data must
 *   be an object of strings, numbers and booleans; values are stored, and read back, as strings.
 * - `envelope`: one field, `event`, holding the envelope as JSON (what agentbus 0.1 wrote).
 * Every layout is read by every agentbus, whatever the topic's setting; the setting only chooses
 * how publishes are written.
 */
export type Layout = 'fields' | 'flat' | 'envelope';
const LAYOUTS: readonly Layout[] = ['fields', 'flat', 'envelope'];

/** First field of an entry in the fields layout: our own entries are recognised by it. */
export const FIELDS_MARKER = 'specversion';
/** Prefix of the attribute fields of the flat layout; its first field is `ce_specversion`. */
export const FLAT_PREFIX = 'ce_';
export const FLAT_MARKER = `${FLAT_PREFIX}specversion`;
/** Most data keys a flat event may have (each is a script argument of a deduplicated publish). */
export const MAX_FLAT_KEYS = 1000;

/**
 * The `layout` option of the Redis bus, resolved: per topic, an exact type's layout, else that of
 * the longest matching `prefix*` pattern, else `fields`. `{ '*': 'envelope' }` changes the default.
 */
export class Layouts {
  private readonly exact = new Map<string, Layout>();
  /** Patterns' prefixes, longest first. */
  private readonly prefixes: [string, Layout][] = [];
  private readonly memo = new Map<string, Layout>();
  /** No per-topic setting: every topic is written in the fields layout (the hot path skips the lookup). */
  readonly uniform: boolean;

  constructor(option: unknown) {
    if (option !== undefined && (option === null || typeof option !== 'object' || Array.isArray(option))) {
      throw invalid('INVALID_OPTION', `invalid layout ${JSON.stringify(option)}: expected an object of event types or patterns (prefix*) to 'fields', 'flat' or 'envelope'`);
    }
    for (const [pattern, layout] of Object.entries((option ?? {}) as Record<string, unknown>)) {
      try {
        checkPattern(pattern);
      } catch (err) {
        throw invalid('INVALID_OPTION', `invalid layout key: ${(err as Error).message}`);
      }
      if (!LAYOUTS.includes(layout as Layout)) {
        throw invalid('INVALID_OPTION', `invalid layout ${JSON.stringify(layout)} for ${JSON.stringify(pattern)}: expected 'fields', 'flat' or 'envelope'`);
      }
      if (pattern.endsWith('*')) this.prefixes.push([pattern.slice(0, -1), layout as Layout]);
      else this.exact.set(pattern, layout as Layout);
    }
    this.prefixes.sort((a, b) => b[0].length - a[0].length);
    this.uniform = this.exact.size === 0 && this.prefixes.every(([, l]) => l === 'fields');
  }

  of(topic: string): Layout {
    if (this.uniform) return 'fields';
    let l = this.memo.get(topic);
    if (l === undefined) {
      l = this.exact.get(topic) ?? this.prefixes.find(([p]) => topic.startsWith(p))?.[1] ?? 'fields';
      // Bounded: a bus publishing to ever new topics does not grow this forever.
      if (this.memo.size >= 10_000) this.memo.clear();
      this.memo.set(topic, l);
    }
    return l;
  }
}

/**
 * What publish stores as an entry's body: `envelope`, the envelope as JSON; `fields` and `flat`,
 * data as JSON (the fields are built from it and the event by entryFields). Refuses what
 * encodeEvent refuses, by the same measure: data that is not JSON, and an event whose envelope as
 * JSON is over `maxBytes` (maxPayloadBytes means the same in every layout and on every adapter).
 * The envelope is only serialised when the event may be near the limit.
 */
export function encodeBody(layout: Layout, event: CloudEvent, maxBytes: number): string {
  if (layout === 'envelope') return encodeEvent(event, maxBytes);
  if (layout === 'flat') checkFlat(event);
  let data: string | undefined;
  try {
    data = JSON.stringify(event.data);
  } catch {
    return encodeEvent(event, maxBytes); // throws, naming the event and the cause
  }
  data ??= 'null'; // data undefined (or a function): the envelope would have none, read back as null
  // Bytes of the envelope at most: data's (3 per UTF-16 unit), and per attribute its name, quotes,
  // colon and comma, and its value escaped (at most 6 bytes per unit, \u00XX).
  let bound = 3 * data.length + 2;
  for (const k in event) {
    const v = (event as unknown as Record<string, unknown>)[k];
    if (k !== 'data' && v !== undefined) bound += k.length + 6 + 6 * String(v).length;
  }
  if (bound > maxBytes) encodeEvent(event, maxBytes); // the exact count; throws PAYLOAD_TOO_LARGE
  return data;
}

/** The field list XADD writes for an entry (body from encodeBody). */
export function entryFields(layout: Layout, event: CloudEvent, body: string): string[] {
  if (layout === 'envelope') return ['event', body];
  const prefix = layout === 'flat' ? FLAT_PREFIX : '';
  const out = [layout === 'flat' ? FLAT_MARKER : FIELDS_MARKER, event.specversion ?? '1.0'];
  for (const k in event) {
    const v = (event as unknown as Record<string, unknown>)[k];
    if (k === 'data' || k === 'specversion' || v === undefined) continue;
    out.push(prefix === '' ? k : prefix + k, typeof v === 'string' ? v : String(v));
  }
  if (layout === 'fields') {
    out.push('data', body);
  } else {
    const data = event.data as Record<string, string | number | boolean | undefined>;
    for (const k in data) if (data[k] !== undefined) out.push(k, String(data[k]));
  }
  return out;
}

/** The flat layout's rule on data: an object of scalars, no key in the attributes' `ce_` namespace. */
function checkFlat(event: CloudEvent): void {
  const data = event.data;
  const refuse = (why: string) =>
    invalid('INVALID_OPTION', `event ${event.type} is written in the flat layout (Redis layout option), where data's keys are stream fields: ${why}`);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw refuse(`data must be an object of strings, numbers and booleans, got ${data === null ? 'null' : Array.isArray(data) ? 'an array' : typeof data}`);
  }
  let n = 0;
  for (const [k, v] of Object.entries(data)) {
    if (k.startsWith(FLAT_PREFIX)) throw refuse(`data key ${JSON.stringify(k)} starts with "${FLAT_PREFIX}", which the flat layout keeps for CloudEvents attributes`);
    if (v === undefined) continue; // absent, as in JSON
    if (typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) {
      throw refuse(`data key ${JSON.stringify(k)} holds ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'number' ? String(v) : `a${typeof v === 'object' ? 'n' : ''} ${typeof v}`}; expected a string, a finite number or a boolean`);
    }
    if (++n > MAX_FLAT_KEYS) throw refuse(`data has more than ${MAX_FLAT_KEYS} keys`);
  }
}
