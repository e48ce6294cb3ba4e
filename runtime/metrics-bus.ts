// The metrics of what the bus itself does for this host (Bus.observe): delayed events its mover
// moved and how late, and its requests (bus.request, ctx.request): made, how each ended, round
// trip, replies dropped. Labels are the type only (bounded by the code's types), or none.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { BusObserver } from '../bus/contract.js';

/** Lateness of moved delayed events, seconds: the mover polls every 100 ms; after downtime, hours. */
const LATENESS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 60, 3600];
/** Request round trips, seconds: a local hop is about a millisecond; a tool call, seconds to minutes. */
const ROUND_TRIP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120];

/** Registers the series on `registry` (at 0 from the start where they have no label) and returns the observer feeding them. */
export function busMetrics(registry: Registry): BusObserver {
  const registers = [registry];
  const moved = new Counter({
    name: 'agentbus_due_moved_total',
    help: "Delayed events this host's mover moved into their topic when due (whoever published them), per topic",
    labelNames: ['type'],
    registers,
  });
  const lateness = new Histogram({
    name: 'agentbus_due_lateness_seconds',
    help: "Seconds from a delayed event's due time to the end of the move that put it in its topic (this host's mover)",
    buckets: LATENESS_BUCKETS,
    registers,
  });
  const sent = new Counter({ name: 'agentbus_requests_sent_total', help: "Requests made through this host's bus (bus.request, ctx.request), per request type", labelNames: ['type'], registers });
  const ended = new Counter({
    name: 'agentbus_request_outcomes_total',
    help: 'Requests ended, per type and outcome: replied, timed_out (no reply within timeoutMs), failed (dead-lettered by the handler group, the publish refused, or the bus closed)',
    labelNames: ['type', 'outcome'],
    registers,
  });
  const roundTrip = new Histogram({
    name: 'agentbus_request_duration_seconds',
    help: 'Seconds from a request call to its reply, per request type (replied requests only)',
    labelNames: ['type'],
    buckets: ROUND_TRIP_BUCKETS,
    registers,
  });
  const dropped = new Counter({
    name: 'agentbus_request_replies_dropped_total',
    help: 'Replies dropped because no request waited for them: late (their request had timed out) or a second reply to one request',
    registers,
  });
  dropped.inc(0);
  return {
    dueMoved(ms) {
      for (const m of ms) {
        moved.inc({ type: m.type }, m.count);
        for (const late of m.lateMs) lateness.observe(late / 1000);
      }
    },
    requestSent: (type) => sent.inc({ type }),
    requestEnded(r) {
      ended.inc({ type: r.type, outcome: r.outcome });
      if (r.outcome === 'replied') roundTrip.observe({ type: r.type }, r.durationMs / 1000);
    },
    replyDropped: () => dropped.inc(),
  };
}
