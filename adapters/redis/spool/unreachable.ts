/** Which errors of an append mean "Redis is unreachable" (spool the events) rather than "Redis refused them" (reject). */
import { AgentbusError, ConnectionError } from '../../../bus/errors.js';

/**
 * Replies of a server that cannot take writes for now (loading its data after a restart, a
 * failover or cluster reconfiguration under way): the next try may succeed, as after an outage.
 */
const TRANSIENT_REPLIES = /^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/;

/**
 * True for a connection refused, closed or reset, a command timeout, ioredis giving up on its
 * offline queue, and the transient replies above. False for every other error: a reply Redis
 * gave (WRONGTYPE, OOM, a script error), and agentbus' own (a write refused by the store's
 * policy, a payload too large, NOT_REPLICATED: the master stored it): those reject the publish,
 * except a CONNECTION_FAILED caused by one of the above (a bus that has not reached Redis since it
 * started, start.ts).
 */
export function isUnreachable(err: unknown): boolean {
  if (err instanceof ConnectionError && err.code === 'CONNECTION_FAILED') return isUnreachable(err.cause);
  if (err instanceof AgentbusError || !(err instanceof Error)) return false;
  if (err.name === 'ReplyError') return TRANSIENT_REPLIES.test(err.message);
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|Command timed out|aborted due to connection close|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTCONN/.test(err.message) ||
    /^E[A-Z]+$/.test(String((err as { code?: unknown }).code ?? ''))
  );
}
