import { pino, type Logger } from 'pino';

/**
 * The one default logger: what the bus, each adapter and the host log through when no `logger` is
 * given. pino JSON lines on stdout, named `agentbus`, at LOG_LEVEL (an empty variable counts as
 * unset) else info. Errors go in `err` (pino's err serializer; errForLog in thrown.ts for values
 * it cannot read). The CLI's own variants (pretty, one line) are in runtime/cli-logger.ts.
 */
export function defaultLogger(env: NodeJS.ProcessEnv = process.env): Logger {
  return pino({ name: 'agentbus', level: logLevel(env, 'info') });
}

/** LOG_LEVEL, or `fallback` when it is unset or empty. */
export function logLevel(env: NodeJS.ProcessEnv, fallback: string): string {
  return env.LOG_LEVEL || fallback;
}
