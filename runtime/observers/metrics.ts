// Delivery metrics: each outcome counted in the host's Prometheus counters (handled, failed,
// retried, dead-lettered by reason) and its handler time in the duration histogram.
import type { DeliveryOutcome } from '../../bus/contract.js';
import type { Observer } from './observer.js';

/** `metrics` is the host's HostMetrics (runtime/metrics.ts), or anything counting outcomes the same way. */
export function countOutcomes(metrics: { outcome(o: DeliveryOutcome): void }): Observer {
  return (o) => metrics.outcome(o);
}
