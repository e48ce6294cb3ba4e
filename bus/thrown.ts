// What was thrown, made safe to store and log: describe() for text, stackOf() for the stack with its
// causes, errForLog() for a log line's `err` field. Every function here is total (it never throws,
// whatever a handler threw), so no error path can itself fail.
import { pino } from 'pino';

/** Longest text describe() makes of a thrown value that is not an Error. */
const DESCRIBE_MAX = 1000;

/**
 * A thrown value as text, for logs and dead letters. Total: it never throws, whatever was thrown
 * (`Object.create(null)`, an object whose toString throws, a revoked Proxy), so no error path can
 * itself fail. An Error gives `<name>: <message>`; an object String() cannot convert, its JSON.
 */
export function describe(err: unknown): string {
  try {
    if (err instanceof Error) return `${String(err.name)}: ${String(err.message)}`;
    return String(err);
  } catch {
    // Not convertible by String(): fall through to JSON, then to its tag.
  }
  try {
    const json = JSON.stringify(err);
    if (typeof json === 'string') return json.length > DESCRIBE_MAX ? `${json.slice(0, DESCRIBE_MAX)}...` : json;
  } catch {
    // Circular, a BigInt, a getter that throws: fall through.
  }
  try {
    return `${Object.prototype.toString.call(err)} (not convertible to a string)`;
  } catch {
    return `a thrown ${typeof err} (not convertible to a string)`;
  }
}

/** Most characters of a stack stackOf() keeps: a dead letter stays small whatever was thrown. */
export const MAX_STACK_CHARS = 8192;
/** Causes stackOf() follows (`caused by:` lines). */
const MAX_CAUSES = 5;

/**
 * The stack of a thrown Error, where it was thrown first (V8's text: `<name>: <message>` then the
 * frames), followed by its causes' as `caused by: <stack>` (the form pino logs), cut to
 * MAX_STACK_CHARS. Undefined for a thrown value that is not an Error or has no stack. Total, like
 * describe(): a getter that throws gives undefined, not an error.
 */
export function stackOf(err: unknown): string | undefined {
  try {
    if (!(err instanceof Error)) return undefined;
    let out = typeof err.stack === 'string' ? err.stack : '';
    let cause: unknown = err.cause;
    for (let i = 0; i < MAX_CAUSES && cause instanceof Error && out.length < MAX_STACK_CHARS; i++, cause = cause.cause) {
      if (typeof cause.stack === 'string') out += `\ncaused by: ${cause.stack}`;
    }
    if (out === '') return undefined;
    if (out.length <= MAX_STACK_CHARS) return out;
    const tail = `\n... (cut: ${out.length} characters)`;
    return out.slice(0, MAX_STACK_CHARS - tail.length) + tail;
  } catch {
    return undefined;
  }
}

/**
 * A thrown value for a log line's `err` field. An Error goes as itself: pino's `err` serializer
 * (active in every logger pino() makes) writes its type, message and stack with its causes'. Any
 * other value, or an Error pino's serializer cannot read (a getter that throws), goes as
 * `{ type, message, stack }` built from describe() and stackOf(): pino writes a non-Error as it is,
 * and a revoked Proxy would throw inside the logger. Total.
 */
export function errForLog(err: unknown): unknown {
  try {
    if (err instanceof Error) {
      pino.stdSerializers.err(err);
      return err;
    }
  } catch {
    // Unreadable for pino (or `instanceof` itself threw, as on a revoked Proxy): described instead.
  }
  // No prototype: pino's serializer then keeps `type` as given rather than naming the constructor.
  const out = Object.create(null) as Record<string, string>;
  out.type = thrownType(err);
  out.message = describe(err);
  const stack = stackOf(err);
  if (stack !== undefined) out.stack = stack;
  return out;
}

/** `instanceof` that cannot throw (it does on a revoked Proxy). */
export function isA(err: unknown, cls: abstract new (...args: never[]) => unknown): boolean {
  try {
    return err instanceof cls;
  } catch {
    return false;
  }
}

function thrownType(err: unknown): string {
  try {
    return isA(err, Error) ? String((err as Error).name) : err === null ? 'null' : typeof err;
  } catch {
    return typeof err;
  }
}
