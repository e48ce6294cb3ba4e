// The agent-wide circuit breaker (AgentOptions.breakerFailures): so many failed deliveries in a row,
// across all of an agent's replicas, count as a crash of the agent, which its supervisor restarts.
import { CircuitOpenError } from '../../bus/errors.js';
import { describe } from '../../bus/thrown.js';
import type { Observer } from './observer.js';

/**
 * Counts handler throws in a row (a handled delivery starts the count again; dead letters change
 * nothing) and calls `trip` once, at the `failures`-th, with a CircuitOpenError naming the agent and
 * the last error (its cause). `failures` 0: off. One per agent instance: a restart starts at 0.
 */
export function agentBreaker(agent: string, failures: number, trip: (err: CircuitOpenError) => void): Observer {
  let inRow = 0;
  return (o) => {
    if (o.outcome === 'handled') inRow = 0;
    else if (o.outcome === 'failed' && failures > 0 && ++inRow === failures) {
      trip(new CircuitOpenError(`agent ${agent}: ${inRow} deliveries failed in a row (last: ${describe(o.error)}); circuit open`, { cause: o.error }));
    }
  };
}
