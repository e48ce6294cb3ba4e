import { CircuitOpenError, invalid } from '../bus/errors.js';
import { int, knownKeys } from '../bus/validate.js';

export interface CircuitBreakerOptions {
  /** Consecutive failures of one key that open its circuit. Default 5. */
  failures?: number | undefined;
  /** How long an open circuit fails fast before one trial call (half-open) may go through. Default 30000 ms. */
  resetMs?: number | undefined;
  /** Time source, for tests. Default Date.now. */
  now?: (() => number) | undefined;
}

interface Circuit {
  failures: number;
  open: boolean;
  openedAt: number;
  /** A half-open trial call is in flight: everything else still fails fast. */
  trial: boolean;
}

/**
 * One circuit per key (a tool, an endpoint, a tenant): after `failures` failures in a row calls
 * for that key fail fast with CircuitOpenError (code CIRCUIT_OPEN) without running, so a dead
 * downstream costs nothing and slows no other key; after `resetMs` one trial call runs, and its
 * success closes the circuit. Thrown from a handler, CircuitOpenError is an ordinary failed
 * delivery: retried with backoff, dead-lettered after maxAttempts.
 */
export class CircuitBreaker {
  private readonly circuits = new Map<string, Circuit>();
  private readonly failures: number;
  private readonly resetMs: number;
  private readonly now: () => number;

  constructor(options: CircuitBreakerOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalid('INVALID_OPTION', `circuit breaker options must be an object, got ${String(options)}`);
    knownKeys('circuit breaker', options, ['failures', 'resetMs', 'now']);
    this.failures = int('failures', options.failures, 5, 1, 1_000_000);
    this.resetMs = int('resetMs', options.resetMs, 30_000, 1, 86_400_000);
    this.now = options.now ?? Date.now;
  }

  /** `closed`, `open` (failing fast) or `half-open` (the next call is a trial). */
  state(key: string): 'closed' | 'open' | 'half-open' {
    const c = this.circuits.get(key);
    if (!c || !c.open) return 'closed';
    return this.now() - c.openedAt >= this.resetMs ? 'half-open' : 'open';
  }

  async run<T>(key: string, fn: () => Promise<T> | T): Promise<T> {
    let c = this.circuits.get(key);
    if (!c) this.circuits.set(key, (c = { failures: 0, open: false, openedAt: 0, trial: false }));
    const state = this.state(key);
    if (state === 'open' || (state === 'half-open' && c.trial)) {
      throw new CircuitOpenError(`circuit for ${key} is open after ${c.failures} failures in a row; next trial in ${Math.max(0, c.openedAt + this.resetMs - this.now())} ms`);
    }
    if (state === 'half-open') c.trial = true;
    try {
      const result = await fn();
      c.failures = 0;
      c.open = false;
      return result;
    } catch (err) {
      c.failures++;
      if (c.failures >= this.failures) {
        c.open = true; // a failed trial opens it again for resetMs
        c.openedAt = this.now();
      }
      throw err;
    } finally {
      c.trial = false;
    }
  }
}
