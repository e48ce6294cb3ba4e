// The keyed options' table (see KeyedOptions in contract.ts), merged into SUBSCRIBE_OPTIONS.
import { invalid } from '../errors.js';
import { checkType } from '../event.js';
import { fn, int, type OptionSpec } from '../validate.js';
import type { KeyOf, KeyedOptions } from './contract.js';

const KiB = 1024;

export const KEYED_OPTIONS = {
  key: {
    resolve: (name, v) => {
      if (v === undefined || v === 'subject' || typeof v === 'function') return v as KeyOf | undefined;
      throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected 'subject' or a function (event) => string`);
    },
    doc: 'none (not keyed)',
  } as OptionSpec<KeyOf | undefined>,
  initialState: { resolve: (name, v) => fn(name, v as KeyedOptions['initialState']) ?? (() => null), doc: '() => null' } as OptionSpec<(key: string) => unknown>,
  waitsFor: {
    resolve: (name, v) => {
      if (v === undefined) return [];
      if (!Array.isArray(v)) throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected an array of event types`);
      v.forEach((t) => checkType(t));
      return [...new Set(v as string[])];
    },
    doc: '[]',
  } as OptionSpec<string[]>,
  maxActiveKeys: { resolve: (name, v) => int(name, v, 10_000, 1, 100_000_000), doc: '10000' } as OptionSpec<number>,
  maxStateBytes: { resolve: (name, v) => int(name, v, 256 * KiB, 2, 64 * KiB * KiB), doc: '256 KiB (262144)' } as OptionSpec<number>,
  stateTtlMs: { resolve: (name, v) => int(name, v, 0, 0, 10 * 365 * 86_400_000), doc: '0' } as OptionSpec<number>,
} satisfies { [K in keyof Required<KeyedOptions>]: OptionSpec<unknown> };
