// What watches the outcome of each delivery (handled, failed, dead-lettered) without changing it:
// metrics, the failure log line, the agent-wide breaker. AgentInstance passes one list of them to
// its subscriptions as `onOutcome`; a new watcher is one file in this folder and one line in that list.
import type { DeliveryOutcome } from '../../bus/contract.js';

export type Observer = (outcome: DeliveryOutcome) => void;

/**
 * One observer calling each of `list` in order. One that throws stops none of the others; the first
 * error is thrown again after all ran (the consumer logs it as `onOutcome threw`).
 */
export function observeAll(list: readonly Observer[]): Observer {
  return (outcome) => {
    let error: { err: unknown } | null = null;
    for (const observe of list) {
      try {
        observe(outcome);
      } catch (err) {
        error ??= { err };
      }
    }
    if (error) throw error.err;
  };
}
