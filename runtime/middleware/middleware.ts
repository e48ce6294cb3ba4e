// What wraps an agent's handler calls: a middleware takes the next handler and returns one that
// runs around it (before, after, instead of it, or with a different context). AgentInstance
// composes one list of them around its routing; a new concern (a timeout, OpenTelemetry spans, a
// rate limit) is one file in this folder and one line in that list.
import type { AgentHandler } from '../../agents/base.js';

export type Middleware = (next: AgentHandler) => AgentHandler;

/** `handler` wrapped by `list`, the first outermost: compose([a, b], h) is a(b(h)). Built once, not per call. */
export function compose(list: readonly Middleware[], handler: AgentHandler): AgentHandler {
  return list.reduceRight((next, m) => m(next), handler);
}
