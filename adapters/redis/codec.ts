/** Decoding stream entries, ours in every layout and other producers' alike, into events. */
import { checkEnvelope, decodeEvent, oversize, OVERSIZE_KEPT_CHARS, type CloudEvent } from '../../bus/event.js';
import { FIELDS_MARKER, FLAT_MARKER, FLAT_PREFIX } from './layout.js';

/**
 * Stream entry fields. agentbus writes the layouts of layout.ts: `fields` (first field
 * `specversion`), `flat` (first field `ce_specversion`) or `envelope` (one field, `event`, holding
 * the envelope as JSON). Entries written by other producers are read too:
 * - `type`/`source`/`data` (JSON string)/`timestamp` (seed 003's Python bus): data is parsed;
 * - any other flat field/value pairs (seed 001's `XADD verification_stream * user_wallet 0x.. ...`):
 *   the fields are the data.
 * Foreign entries get the stream entry id as event id, the topic as type, `redis://<stream>` as
 * source and the entry's time; an entry with no fields, or whose JSON does not parse, is malformed.
 */
export const EVENT_FIELD = 'event';

export type Decoded = { event: CloudEvent; raw: string } | { event: null; raw: string; malformed: string };

export function decodeEntry(topic: string, key: string, id: string, fields: string[] | null): Decoded {
  if (fields === null || fields.length === 0) return { event: null, raw: '{}', malformed: 'entry has no fields' };
  if (fields.length === 2 && fields[0] === EVENT_FIELD) {
    const event = decodeEvent(fields[1]);
    return typeof event === 'string' ? { event: null, raw: fields[1], malformed: event } : { event, raw: fields[1] };
  }
  if (fields[0] === FIELDS_MARKER || fields[0] === FLAT_MARKER) {
    const event = fields[0] === FIELDS_MARKER ? decodeFields(fields) : decodeFlat(fields);
    return typeof event === 'string' ? { event: null, raw: fieldsText(fields), malformed: event } : { event, raw: envelopeText(fields) };
  }
  const flat: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) flat[fields[i]] = fields[i + 1];
  const raw = JSON.stringify(flat);
  const time = new Date(Number(id.slice(0, id.indexOf('-')))).toISOString();
  if (EVENT_FIELD in flat) {
    return { event: null, raw, malformed: `field "${EVENT_FIELD}" beside other fields` };
  }
  if ('type' in flat && 'data' in flat) {
    let data: unknown;
    try {
      data = JSON.parse(flat.data);
    } catch (err) {
      return { event: null, raw, malformed: `field "data" is not JSON: ${(err as Error).message}` };
    }
    const e = checkEnvelope({
      specversion: '1.0',
      id: flat.id || id,
      type: flat.type,
      source: flat.source || `redis://${key}`,
      time: flat.time || flat.timestamp || time,
      data,
      ...(flat.subject ? { subject: flat.subject } : {}),
    });
    return typeof e === 'string' ? { event: null, raw, malformed: e } : { event: e, raw };
  }
  return { event: { specversion: '1.0', id, type: topic, source: `redis://${key}`, time, data: flat }, raw };
}

/**
 * An entry larger than `maxBytes`, told from the lengths in the reply before anything is parsed:
 * what stands for it (see oversize()), or null when it fits. Its size: an entry of ours, its
 * envelope's UTF-8 bytes (as publish counted them); a foreign one, its field names and values'.
 */
export function tooLarge(fields: string[], maxBytes: number): { raw: string; malformed: string } | null {
  const own = fields.length === 2 && fields[0] === EVENT_FIELD;
  let units = 0;
  for (let i = own ? 1 : 0; i < fields.length; i++) units += fields[i].length;
  // A UTF-16 unit is 1 to 3 UTF-8 bytes: count bytes only when that decides.
  if (units * 3 <= maxBytes) return null;
  let bytes = 0;
  for (let i = own ? 1 : 0; i < fields.length; i++) bytes += Buffer.byteLength(fields[i]);
  if (bytes <= maxBytes) return null;
  let head = own ? fields[1].slice(0, OVERSIZE_KEPT_CHARS) : '';
  for (let i = 0; !own && i + 1 < fields.length && head.length < OVERSIZE_KEPT_CHARS; i += 2) {
    head += `${i ? ' ' : ''}${fields[i].slice(0, OVERSIZE_KEPT_CHARS)}=${fields[i + 1].slice(0, OVERSIZE_KEPT_CHARS)}`;
  }
  return oversize(head, bytes, maxBytes);
}

/**
 * An entry in the fields layout (layout.ts): every field but `data` is an attribute, `data` is JSON.
 * The event, or what is wrong with the entry. The hot path of reading our own entries: one object
 * and one JSON.parse of data per entry. The attributes agentbus writes are stored under literal
 * names, and those names put back into `fields` (kept for the delivery's `raw`): a name read from a
 * reply is a new string every time, which a store under a computed name makes V8 look up in its
 * string table, and which `fields` would otherwise keep alive with the delivery (both measured in
 * a drain's profile: string table lookups and copying the names in the young-generation GC).
 */
export function decodeFields(fields: string[]): CloudEvent | string {
  const e: Record<string, unknown> = {};
  let data: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const v = fields[i + 1];
    switch (fields[i]) {
      case 'specversion':
        e.specversion = v;
        fields[i] = 'specversion';
        break;
      case 'id':
        e.id = v;
        fields[i] = 'id';
        break;
      case 'type':
        e.type = v;
        fields[i] = 'type';
        break;
      case 'source':
        e.source = v;
        fields[i] = 'source';
        break;
      case 'time':
        e.time = v;
        fields[i] = 'time';
        break;
      case 'data':
        data = v;
        fields[i] = 'data';
        break;
      default:
        e[fields[i]] = v;
    }
  }
  if (data !== undefined) {
    try {
      e.data = JSON.parse(data);
    } catch (err) {
      return `field "data" is not JSON: ${(err as Error).message}`;
    }
  }
  return checkEnvelope(e);
}

/** An entry in the flat layout: `ce_` fields are the attributes, the others data (strings). */
export function decodeFlat(fields: string[]): CloudEvent | string {
  const e: Record<string, unknown> = {};
  const data: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const k = fields[i];
    if (k.startsWith(FLAT_PREFIX)) e[k.slice(FLAT_PREFIX.length)] = fields[i + 1];
    else data[k] = fields[i + 1];
  }
  e.data = data;
  return checkEnvelope(e);
}

/**
 * The envelope JSON of an entry in the fields or flat layout, from the stored text (never from the
 * decoded event, which a handler may have changed, and which may be nested too deep to serialise):
 * what its dead letter stores, and a retry writes back.
 */
export function envelopeText(fields: string[]): string {
  const flat = fields[0] === FLAT_MARKER;
  let attrs = '';
  let data = flat ? '' : 'null';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const [k, v] = [fields[i], fields[i + 1]];
    if (flat && !k.startsWith(FLAT_PREFIX)) data += `${data ? ',' : ''}${JSON.stringify(k)}:${JSON.stringify(v)}`;
    else if (!flat && k === 'data') data = v;
    else attrs += `${JSON.stringify(flat ? k.slice(FLAT_PREFIX.length) : k)}:${JSON.stringify(v)},`;
  }
  return `{${attrs}"data":${flat ? `{${data}}` : data}}`;
}

/** An entry's fields as a JSON object, for a malformed entry's dead letter. */
function fieldsText(fields: string[]): string {
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) o[fields[i]] = fields[i + 1];
  return JSON.stringify(o);
}
