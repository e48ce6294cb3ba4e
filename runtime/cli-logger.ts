/**
 * The CLI's loggers, the terminal variants of the default one (bus/logger.ts): both read LOG_LEVEL
 * the same way (empty counts as unset) and keep pino's `err` field for errors.
 */
import { pino, type Logger } from 'pino';
import { logLevel } from '../bus/logger.js';

/** `agentbus start`: pretty logs on a terminal, JSON lines otherwise (and always with LOG_FORMAT=json). */
export function startLogger(env: NodeJS.ProcessEnv = process.env): Logger {
  const level = logLevel(env, 'info');
  if (process.stdout.isTTY && env.LOG_FORMAT !== 'json') {
    return pino({ level, transport: { target: 'pino-pretty', options: { ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l', singleLine: true } } });
  }
  return pino({ level });
}

/** Commands other than `start` log to stderr at LOG_LEVEL (default error), one line a record, never JSON unless LOG_FORMAT=json. */
export function commandLogger(env: NodeJS.ProcessEnv = process.env): Logger {
  const level = logLevel(env, 'error');
  if (env.LOG_FORMAT === 'json') return pino({ level }, pino.destination(2));
  return pino({ level }, { write: (line: string) => void process.stderr.write(oneLine(line)) });
}

/** A pino record as `[warn] message (key=value, ...)`, control characters escaped. */
export function oneLine(json: string): string {
  const { level, msg, time: _t, pid: _p, hostname: _h, ...rest } = JSON.parse(json) as Record<string, unknown>;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return printable(`[${pino.levels.labels[level as number] ?? level}] ${String(msg ?? '')}${fields.length ? ` (${fields.join(', ')})` : ''}`) + '\n';
}

/**
 * Text from the store made safe for a terminal: control characters (C0, DEL, C1), which a foreign
 * event or an error message could carry to move the cursor, recolour or retitle the terminal, are
 * shown as \xNN. Every log line, table cell and replay failure line goes through it; `--json`
 * output is JSON.stringify's, which escapes C0 itself.
 */
export function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
