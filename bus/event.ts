import { createHash, randomUUID } from 'node:crypto';
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
  /** Request/reply (extension attribute): the request's id, carried by its reply. */
  correlationid?: string;
  /** Request/reply (extension attribute): the topic the reply goes to. */
  replyto?: string;
}

/** What a caller may set on a published event; everything else is filled in. */
export interface PublishOptions {
  /** Caller-chosen id, 1-256 characters. A second publish of the same source + id inside the dedup window is stored once. */
  id?: string | undefined;
  /** Non-empty, as `traceparent`, `dataschema` and `datacontenttype` when given. */
  subject?: string | undefined;
  /** 1-1000 characters. Default: the bus' `source` option. */
  source?: string | undefined;
  /** ISO-8601; default: now. */
  time?: string | undefined;
  traceparent?: string | undefined;
  dataschema?: string | undefined;
  datacontenttype?: string | undefined;
  /** With a caller `id`: this publish's dedup window instead of the bus' `dedupWindowMs` (per tool, per tenant...). */
  dedupWindowMs?: number | undefined;
  /** Request/reply: set by `bus.request` and on replies; 1-256 characters. */
  correlationid?: string | undefined;
  /** Request/reply: the topic a reply goes to (an event type); set by `bus.request`. */
  replyto?: string | undefined;
  /**
   * Delivers the event this many milliseconds from now (0 to 365 days), never earlier: it is stored
   * at once in the store's due entries and moved into its topic when due (see README, Delayed events).
   */
  delay?: number | undefined;
  /** As `delay`, at a time: a Date, epoch milliseconds or an ISO-8601 time; one in the past publishes at once. */
  at?: Date | number | string | undefined;
  /**
   * With `delay` or `at`: names the delayed event (1-1024 characters). A name has at most one pending
   * event in the store: publishing another under it replaces the pending one atomically (the old
   * one never fires, whatever its type), and `bus.schedules.cancel(name)` removes it. A named event
   * is always stored as due, even with an `at` in the past (it fires at once, through the mover).
   */
  name?: string | undefined;
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

/**
 * Reply topics (`agentbus.reply.<12 hex>`, bus/requests.ts): each is read by the one bus that made
 * requests, and removed when it closes or dies (bus/replies.ts).
 */
export const REPLY_PREFIX = 'agentbus.reply.';

/**
 * Reply topics of keyed groups (`agentbus.reply.keyed.<group>`, bus/keyed/requests.ts): where the
 * replies to a keyed handler's durable `ctx.request` go. Read by the keyed group itself (whichever
 * consumer owns it), so they outlive the requesting process; under REPLY_PREFIX, so no pattern
 * matches them, and never swept as an orphan (bus/replies.ts).
 */
export const KEYED_REPLY_PREFIX = `${REPLY_PREFIX}keyed.`;

/**
 * The reply topic of keyed group `group`: the group's name when it is a valid type's tail (the
 * usual case, readable in stats), else its type characters followed by a hash of the whole name
 * (a group name may hold `/` and `@`, which a type may not).
 */
export function keyedReplyTopic(group: string): string {
  const plain = KEYED_REPLY_PREFIX + group;
  if (isType(plain)) return plain;
  const hash = createHash('sha256').update(group).digest('hex').slice(0, 16);
  const tail = group.replace(/[^A-Za-z0-9._:-]/g, '_').slice(0, MAX_TYPE_LENGTH - KEYED_REPLY_PREFIX.length - hash.length - 1);
  return `${KEYED_REPLY_PREFIX}${tail}.${hash}`;
}

/**
 * Whether `pattern` (an exact type, or a prefix ending in `*`) names `type`. A pattern never names a
 * reply topic: replies belong to the bus that asked, and a pattern subscriber taking one on would
 * keep a group on a topic its bus drops (and make it again, on Redis, at every read).
 */
export function matches(pattern: string, type: string): boolean {
  return pattern.endsWith('*') ? type.startsWith(pattern.slice(0, -1)) && !type.startsWith(REPLY_PREFIX) : pattern === type;
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

/**
 * An event id made from `parts` (joined with NUL, hashed): the same parts give the same id on any
 * host, so a publish repeated under it is stored once within the dedup window (replies, keyed
 * handlers' publishes, schedule ticks).
 */
export function stableId(...parts: Array<string | number>): string {
  return createHash('sha256').update(parts.join('\0')).digest('base64url').slice(0, 26);
}

/** The keys of PublishOptions; anything else in a publish is refused (a typo is not a default). */
export const PUBLISH_OPTION_KEYS = ['id', 'subject', 'source', 'time', 'traceparent', 'dataschema', 'datacontenttype', 'dedupWindowMs', 'correlationid', 'replyto', 'delay', 'at', 'name'];
export const MAX_ID_LENGTH = 256;
/** As the bus' own `source` option. */
export const MAX_SOURCE_LENGTH = 1000;

/**
 * Builds the envelope; optional fields are only set when given so stored bodies stay small. Given
 * options are checked here (a publish without options skips every check): a field consumers would
 * refuse, or that is not a string, is refused at the call instead. Unknown keys are the caller's
 * check (bus/engine.ts), which knows whether it is a publish or a batch entry.
 */
export function createEvent<T>(type: string, data: T, options: PublishOptions | undefined, source: string): CloudEvent<T> {
  if (options === undefined) return { specversion: '1.0', id: randomUUID(), type, source, time: nowIso(), data };
  const o = options;
  if (o.id !== undefined) text('event id', o.id, MAX_ID_LENGTH);
  if (o.source !== undefined) text('source', o.source, MAX_SOURCE_LENGTH);
  if (o.time !== undefined && (typeof o.time !== 'string' || Number.isNaN(Date.parse(o.time)))) {
    throw invalid('INVALID_OPTION', `invalid time ${show(o.time)}: expected an ISO-8601 time string`);
  }
  const event: CloudEvent<T> = {
    specversion: '1.0',
    id: o.id ?? randomUUID(),
    type,
    source: o.source ?? source,
    time: o.time ?? nowIso(),
    data,
  };
  if (o.subject !== undefined) event.subject = text('subject', o.subject);
  if (o.traceparent !== undefined) event.traceparent = text('traceparent', o.traceparent);
  if (o.dataschema !== undefined) event.dataschema = text('dataschema', o.dataschema);
  if (o.datacontenttype !== undefined) event.datacontenttype = text('datacontenttype', o.datacontenttype);
  if (o.correlationid !== undefined) event.correlationid = text('correlationid', o.correlationid, MAX_ID_LENGTH);
  if (o.replyto !== undefined) {
    checkType(o.replyto);
    event.replyto = o.replyto;
  }
  return event;
}

/** A non-empty string (CloudEvents requires it of every attribute present), up to `max` characters. */
function text(name: string, v: unknown, max = Infinity): string {
  if (typeof v !== 'string' || v === '' || v.length > max) {
    const limit = max === Infinity ? 'a non-empty string' : `a string of 1-${max} characters`;
    throw invalid('INVALID_OPTION', `invalid ${name} ${show(v)}: expected ${limit}`);
  }
  return v;
}

/** A value for a message: JSON, cut short when long (a 10 kB id need not be quoted whole). */
function show(v: unknown): string {
  if (typeof v === 'string' && v.length > 80) return `${JSON.stringify(v.slice(0, 40))}... (${v.length} characters)`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
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
