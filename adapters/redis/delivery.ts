/**
 * Stream entries as the engine's Deliveries: size checked first, our own layouts decoded straight
 * from their fields (the hot path), foreign and malformed entries through codec.ts.
 */
import type { Delivery } from '../../bus/driver.js';
import { decodeEvent, type CloudEvent } from '../../bus/event.js';
import { decodeEntry, decodeFields, decodeFlat, envelopeText, EVENT_FIELD, tooLarge } from './codec.js';
import { FIELDS_MARKER, FLAT_MARKER } from './layout.js';

/** The delivery of entry `id` of stream `key` (its topic's, or its retry stream): `ref` is the key. */
export function delivery(topic: string, key: string, id: string, attempts: number, fields: string[] | null, maxBytes: number): Delivery {
  // Size first, from the reply's lengths: an entry past the limit is never parsed.
  const big = fields === null ? null : tooLarge(fields, maxBytes);
  if (big) return { topic, position: id, attempts, event: null, raw: big.raw, malformed: big.malformed, oversize: true, ref: key };
  // Our own entries are the hot path: told by their first field, decoded straight into the Delivery.
  const first = fields?.[0];
  if (first === FIELDS_MARKER || first === FLAT_MARKER) {
    const event = first === FIELDS_MARKER ? decodeFields(fields!) : decodeFlat(fields!);
    if (typeof event !== 'string') return new FieldsDelivery(topic, id, attempts, event, key, fields!);
  } else if (first === EVENT_FIELD && fields!.length === 2) {
    const event = decodeEvent(fields![1]);
    return typeof event === 'string'
      ? { topic, position: id, attempts, event: null, raw: fields![1], malformed: event, ref: key }
      : { topic, position: id, attempts, event, raw: fields![1], ref: key };
  }
  const d = decodeEntry(topic, key, id, fields);
  return d.event === null
    ? { topic, position: id, attempts, event: null, raw: d.raw, malformed: d.malformed, ref: key }
    : { topic, position: id, attempts, event: d.event, raw: d.raw, foreign: true, ref: key };
}

/** The stream key a delivery was read from. */
export const keyOf = (d: Delivery) => d.ref;

/** Deliveries' ids by the stream key they were read from. */
export function byKey(ds: Delivery[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const d of ds) {
    const ids = m.get(keyOf(d));
    if (ids) ids.push(d.position);
    else m.set(keyOf(d), [d.position]);
  }
  return m;
}

/**
 * A delivery of an entry of ours in the fields or flat layout. Its `raw` (the envelope as JSON, for
 * a dead letter) is made from the stored fields only when asked for: building it for every entry
 * would cost as much as decoding it. (A getter on each object literal instead cost more than the
 * decoding, measured; a copy made by spreading has no `raw`, which release() does not need.)
 */
class FieldsDelivery implements Delivery {
  constructor(
    readonly topic: string,
    readonly position: string,
    public attempts: number,
    public event: CloudEvent | null,
    readonly ref: string,
    private readonly fields: string[],
  ) {}
  get raw(): string {
    return envelopeText(this.fields);
  }
}
