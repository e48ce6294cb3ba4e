// The failure log line: one warning per failed delivery that gets another attempt. An event's last
// failure is not logged here: it becomes a dead letter, which the bus logs once stored (with the
// reason and the stack), so each failure is one line.
import type { Logger } from 'pino';
import { errForLog } from '../../bus/thrown.js';
import type { Observer } from './observer.js';

export function logRetries(logger: Logger): Observer {
  return (o) => {
    if (o.outcome === 'failed' && o.retry) logger.warn({ group: o.group, id: o.id, type: o.type, attempt: o.attempt, err: errForLog(o.error) }, 'delivery failed, will retry');
  };
}
