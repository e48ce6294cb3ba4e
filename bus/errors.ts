/**
 * Every error agentbus throws on purpose is an AgentbusError with a stable `code`.
 * Branch on `instanceof` or `code`, never on the message: messages are for people and may change.
 */
export type ErrorCode =
  | 'INVALID_TYPE'
  | 'INVALID_OPTION'
  | 'PAYLOAD_TOO_LARGE'
  | 'BUS_CLOSED'
  | 'NOT_FOUND'
  | 'CONNECTION_FAILED'
  | 'UNSAFE_STORE_CONFIG'
  | 'UNSUPPORTED_STORE'
  | 'NON_RETRYABLE'
  | 'CIRCUIT_OPEN'
  | 'OWNERSHIP_LOST'
  | 'TIMEOUT'
  | 'RETRY_LATER'
  | 'REQUEST_TIMEOUT'
  | 'REQUEST_FAILED'
  | 'WAIT_TIMEOUT'
  | 'STATE_TOO_LARGE'
  | 'NOT_REPLICATED'
  | 'SPOOL_FULL'
  | 'REPLAY_REQUEST';

export class AgentbusError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad input refused at the call: an event type, an option, a payload. Nothing was stored. */
export class ValidationError extends AgentbusError {
  /**
   * false: a retry cannot cure it (a durable call misused in a handler: ctx.step, ctx.waitFor);
   * a handler that throws it is dead-lettered `non_retryable` at once (decide.ts), as with
   * NonRetryableError. Undefined: retried as any error.
   */
  retryable?: false;
}

/** The bus or subscription was closed; the call did nothing. */
export class BusClosedError extends AgentbusError {
  constructor(what: string) {
    super('BUS_CLOSED', `${what}: the bus is closed`);
  }
}

/** A dead letter, group or position named in a call does not exist. */
export class NotFoundError extends AgentbusError {}

/**
 * The store could not be reached or opened. `SPOOL_FULL`: Redis was unreachable and the spool
 * (the Redis `spool` option) already holds `maxBytes`: the publish stored nothing anywhere.
 */
export class ConnectionError extends AgentbusError {}

/**
 * A publish with `acks: 'replicated'` (Redis) was stored on the master, but fewer replicas than
 * asked confirmed it within the timeout (WAIT): a failover now could lose it. Publishing it again
 * with the same `id` is deduplicated, so a retry cannot store it twice.
 */
export class NotReplicatedError extends AgentbusError {}

/**
 * The store answers but is set up so that agentbus would lose events or cannot work:
 * `UNSAFE_STORE_CONFIG` (a Redis `maxmemory-policy` that can evict streams), `UNSUPPORTED_STORE`
 * (a read-only replica, a version older than the one required). The message names what was found
 * and the fix.
 */
export class ConfigurationError extends AgentbusError {}

/**
 * Throw from a handler to dead-letter the event at once, without further attempts
 * (same as calling `ctx.deadLetter(reason)` and returning).
 */
export class NonRetryableError extends AgentbusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NON_RETRYABLE', message, options);
  }
}

/**
 * An agent's circuit opened: `breakerFailures` deliveries failed in a row. The runtime treats it as
 * a crash of the agent (it stops fetching; the supervisor restarts it after its backoff).
 */
export class CircuitOpenError extends AgentbusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CIRCUIT_OPEN', message, options);
  }
}

/**
 * A keyed group's owner lost its lease (another consumer took the group over): its commit was
 * refused and wrote nothing; the deliveries it held are the new owner's to run.
 */
export class OwnershipLostError extends AgentbusError {
  constructor(message: string) {
    super('OWNERSHIP_LOST', message);
  }
}

/**
 * A keyed handler left a state larger than `maxStateBytes` (as JSON): the attempt fails without a
 * retry (the same handler would grow it again), the event becomes a dead letter `state_too_large`
 * and the key keeps its previous state.
 */
export class StateTooLargeError extends AgentbusError {
  constructor(message: string) {
    super('STATE_TOO_LARGE', message);
  }
}

/** A handler ran past its `timeoutMs`: a failed attempt (retried, then dead-lettered). */
export class TimeoutError extends AgentbusError {
  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

/**
 * Throw from a handler to fail this attempt and run the event again after `delayMs`, instead of the
 * backoff (a 429's Retry-After, a rate limit's window). Counts as an attempt like any failure.
 */
export class RetryLaterError extends AgentbusError {
  readonly delayMs: number;
  constructor(delayMs: number, message = `retry in ${delayMs} ms`, options?: { cause?: unknown }) {
    super('RETRY_LATER', message, options);
    if (!Number.isFinite(delayMs) || delayMs < 0 || delayMs > 86_400_000) {
      throw new ValidationError('INVALID_OPTION', `invalid RetryLaterError delay ${String(delayMs)}: expected 0 to 86400000 ms`);
    }
    this.delayMs = Math.round(delayMs);
  }
}

/**
 * The request was dead-lettered by a group that handles its type (its handler failed `maxAttempts`
 * times, threw a NonRetryableError, called ctx.deadLetter, ...): told at once rather than after
 * `timeoutMs`. `group`, `reason` (the dead letter's: `failed`, `non_retryable`, the handler's own)
 * and `error` (what was thrown, as `<name>: <message>`) say which, and why.
 */
export class RequestFailedError extends AgentbusError {
  constructor(
    message: string,
    readonly group: string,
    readonly reason: string,
    readonly error: string,
  ) {
    super('REQUEST_FAILED', message);
  }
}

/** No reply came within the request's `timeoutMs`. */
export class RequestTimeoutError extends AgentbusError {
  constructor(message: string) {
    super('REQUEST_TIMEOUT', message);
  }
}

/**
 * An agent's `ctx.request` (or `ctx.bus.request`) during a replay that stores nothing
 * (`host.replay` without `publish: true`, `agentbus replay --agent` without `--publish`): the
 * request is listed with the replay's captured publishes and not sent, so the call has no reply.
 */
export class ReplayRequestError extends AgentbusError {
  constructor(message: string) {
    super('REPLAY_REQUEST', message);
  }
}

/**
 * A keyed handler's `ctx.waitFor` reached its deadline without a matching event. The deadline is
 * the one recorded at the first wait of that handler run (a redelivery keeps it).
 */
export class WaitTimeoutError extends AgentbusError {
  readonly deadline: Date;
  constructor(message: string, deadline: number) {
    super('WAIT_TIMEOUT', message);
    this.deadline = new Date(deadline);
  }
}

/**
 * A durable call (ctx.step, ctx.waitFor) misused in a handler: INVALID_OPTION that a retry cannot
 * cure (the same code runs again the same way, calling a step's paid function again first), so
 * the event is dead-lettered `non_retryable` at once.
 */
export function misuse(message: string): ValidationError {
  const err = new ValidationError('INVALID_OPTION', message);
  err.retryable = false;
  return err;
}

/** Shorthand used by validators: a ValidationError that names the value and the limit. */
export function invalid(code: 'INVALID_TYPE' | 'INVALID_OPTION' | 'PAYLOAD_TOO_LARGE', message: string): ValidationError {
  return new ValidationError(code, message);
}
