import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { invalid } from './errors.js';

/** A CloudEvents 1.0 envelope. `source` + `id` identify an event; `data` is any JSON value. */
export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  type: string;
  source: string;
  time: string;
  data: T;
  /** The entity the event is about (a device id, a wallet); ordering by subject keys on it. */
  subject?: string;
  datacontenttype?: string;
  dataschema?: string;
  /** W3C trace context, carried from the event that caused this one. */
  traceparent?: string;
  /**
   * Set only on an event whose stored envelope named another type than the topic it was stored
   * under (an entry written by another program): that type. `type` is always the topic.
   */
  originaltype?: string;
}

/** What a caller may set on a published event; everything else is filled in. */
export interface PublishOptions {
  /** Caller-chosen id. A second publish of the same source + id inside the dedup window is stored once. */
  id?: string;
  subject?: string;
  /** Default: the bus' `source` option. */
  source?: string;
  /** ISO-8601; default: now. */
  time?: string;
  traceparent?: string;
  dataschema?: string;
  datacontenttype?: string;
  /** With a caller `id`: this publish's dedup window instead of the bus' `dedupWindowMs` (per tool, per tenant...). */
  dedupWindowMs?: number;
}

/** One entry of `publishBatch`. */
export interface EventInput<T = unknown> extends PublishOptions {
  type: string;
  data: T;
}

export const MAX_TYPE_LENGTH = 200;
const TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/** A valid event type: 1-200 of `A-Z a-z 0-9 . _ : -`, starting with a letter or digit. */
export function isType(type: unknown): type is string {
  return typeof type === 'string' && type.length > 0 && type.length <= MAX_TYPE_LENGTH && TYPE_RE.test(type);
}

/** Throws INVALID_TYPE unless `type` is a valid event type (see isType). */
export function checkType(type: unknown): asserts type is string {
  if (!isType(type)) {
    throw invalid(
      'INVALID_TYPE',
      `invalid event type ${JSON.stringify(type)}: expected 1-${MAX_TYPE_LENGTH} characters of A-Z a-z 0-9 . _ : - starting with a letter or digit`,
    );
  }
}

/**
 * A subscription pattern: an exact type, or a prefix ending in `*` (`device.*` matches `device.a`
 * and `device.a.b`; `*` alone matches every type).
 */
export function checkPattern(pattern: unknown): asserts pattern is string {
  if (typeof pattern === 'string' && pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1);
    if (prefix === '' || (TYPE_RE.test(prefix) && prefix.length < MAX_TYPE_LENGTH)) return;
    throw invalid('INVALID_TYPE', `invalid type pattern ${JSON.stringify(pattern)}: expected a type prefix followed by one trailing *`);
  }
  checkType(pattern);
}

export function matches(pattern: string, type: string): boolean {
  return pattern.endsWith('*') ? type.startsWith(pattern.slice(0, -1)) : pattern === type;
}

/** The topics a list of types and patterns names: exact types as given, patterns against `known`. */
export function expandTypes(types: string[], known: string[]): string[] {
  const patterns = types.filter((t) => t.endsWith('*'));
  return [...new Set([...types.filter((t) => !t.endsWith('*')), ...known.filter((t) => patterns.some((p) => matches(p, t)))])];
}

export const defaultSource = `/agentbus/${hostname()}`;

let lastMs = 0;
let lastIso = '';
/** The current time as ISO-8601, formatted once per millisecond (a hot path under batches). */
function nowIso(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** Builds the envelope; optional fields are only set when given so stored bodies stay small. */
export function createEvent<T>(type: string, data: T, options: PublishOptions | undefined, source: string): CloudEvent<T> {
  const event: CloudEvent<T> = {
    specversion: '1.0',
    id: options?.id ?? randomUUID(),
    type,
    source: options?.source ?? source,
    time: options?.time ?? nowIso(),
    data,
  };
  if (options === undefined) return event;
  if (options.id !== undefined && (typeof options.id !== 'string' || options.id === '' || options.id.length > 256)) {
    throw invalid('INVALID_OPTION', `invalid event id ${JSON.stringify(options.id)}: expected a string of 1-256 characters`);
  }
  if (options.subject !== undefined) event.subject = String(options.subject);
  if (options.traceparent !== undefined) event.traceparent = options.traceparent;
  if (options.dataschema !== undefined) event.dataschema = options.dataschema;
  if (options.datacontenttype !== undefined) event.datacontenttype = options.datacontenttype;
  return event;
}

/** Serializes and enforces the size limit, naming the event and the limit. */
export function encodeEvent(event: CloudEvent, maxBytes: number): string {
  let body: string;
  try {
    body = JSON.stringify(event);
  } catch (err) {
    throw invalid('INVALID_OPTION', `event ${event.type}: data is not JSON-serializable (${(err as Error).message})`);
  }
  // A UTF-16 length under a third of the limit cannot exceed it in UTF-8: skip the byte count.
  if (body.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(body);
    if (bytes > maxBytes) {
      throw invalid('PAYLOAD_TOO_LARGE', `event ${event.type} is ${bytes} bytes; the limit (maxPayloadBytes) is ${maxBytes}`);
    }
  }
  return body;
}

/** Decodes a stored body; returns a string saying what is wrong when it is not a valid envelope. */
export function decodeEvent(body: string): CloudEvent | string {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (err) {
    return `invalid JSON: ${(err as Error).message}`;
  }
  return checkEnvelope(value);
}

export function checkEnvelope(value: unknown): CloudEvent | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object';
  const e = value as Record<string, unknown>;
  for (const field of ['id', 'type', 'source'] as const) {
    if (typeof e[field] !== 'string' || e[field] === '') return `missing or empty "${field}"`;
  }
  if (e.specversion === undefined) e.specversion = '1.0';
  if (typeof e.time !== 'string') e.time = new Date(0).toISOString();
  if (!('data' in e)) e.data = null;
  return e as unknown as CloudEvent;
}

/**
 * The event as delivered from `topic`: the topic decides the type, never the stored envelope (which
 * anyone able to write to the store can forge, to reach another type's handlers). An envelope naming
 * another type is delivered as the topic's type, with the type it named in `originaltype`.
 */
export function asTopic(event: CloudEvent, topic: string): CloudEvent {
  return event.type === topic ? event : { ...event, type: topic, originaltype: event.type };
}

/** How much of an oversize entry a dead letter keeps. */
export const OVERSIZE_KEPT_CHARS = 1024;

/**
 * What stands for a stored entry larger than `maxBytes`, which is never decoded: its first
 * OVERSIZE_KEPT_CHARS characters (`head`) with a note of its size, and the error saying why.
 */
export function oversize(head: string, bytes: number, maxBytes: number): { raw: string; malformed: string } {
  const malformed = `entry is ${bytes} bytes; the limit (maxPayloadBytes) is ${maxBytes}`;
  return { raw: `${head.slice(0, OVERSIZE_KEPT_CHARS)}... [truncated: ${malformed}]`, malformed };
}
