import type { BackoffOptions } from './contract.js';

/**
 * Delay before the attempt after `failed` (1-based) failed: exponential, capped, with "equal jitter"
 * (half fixed, half random) so retries of a burst spread out but never collapse to zero.
 */
export function backoffDelay(failed: number, o: Required<BackoffOptions>, random: () => number = Math.random): number {
  const base = Math.min(o.maxMs, o.initialMs * o.factor ** (failed - 1));
  return Math.round(base / 2 + (random() * base) / 2);
}
