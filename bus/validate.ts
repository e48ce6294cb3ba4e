/**
 * The option validators: each returns the value (or the default when it is undefined) or throws
 * INVALID_OPTION naming the option, the value and what is accepted. Option tables (bus/options.ts)
 * and the runtime's own settings are built from these.
 */
import { invalid } from './errors.js';
import { suggest } from './suggest.js';

export function int(name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected an integer from ${min} to ${max}`);
  }
  return v;
}

export function num(name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected a number from ${min} to ${max}`);
  }
  return v;
}

export function fn<F>(name: string, v: F | undefined): F | undefined {
  if (v !== undefined && typeof v !== 'function') throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected a function`);
  return v;
}

export function str(name: string, v: unknown, dflt: string): string {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || v === '' || v.length > 1000) {
    throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected a non-empty string of at most 1000 characters`);
  }
  return v;
}

/** One of `values`; the first is the default. */
export function oneOf<T extends string>(name: string, v: unknown, values: readonly T[]): T {
  if (v === undefined) return values[0];
  if (!values.includes(v as T)) {
    throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected one of ${values.join(', ')}`);
  }
  return v as T;
}

/** A misspelt option is an error, not a silently ignored default. */
export function knownKeys(what: string, o: object, keys: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (keys.includes(k)) continue;
    const near = suggest(k, [...keys]);
    throw invalid('INVALID_OPTION', `unknown ${what} option ${JSON.stringify(k)}: ${near === undefined ? '' : `${near} (`}expected one of ${keys.join(', ')}${near === undefined ? '' : ')'}`);
  }
}

/**
 * One option of an option table (bus/options.ts, keyed/options.ts): how it is checked (with its
 * default when not given) and that default as documented.
 */
export interface OptionSpec<T> {
  /** The value, or the default when `v` is undefined; throws INVALID_OPTION naming `name`, `v` and what is accepted. */
  resolve(name: string, v: unknown): T;
  /** The default as the option's `@default` doc states it; undefined for an option without one. */
  readonly doc?: string | undefined;
}
