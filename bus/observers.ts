// Bus.observe: the observers of one bus, each called in turn; one that throws is logged (at most
// once a minute) and stops neither the others nor the bus' own work.
import type { Logger } from 'pino';
import type { BusObserver } from './contract-observer.js';
import { invalid } from './errors.js';
import { errForLog } from './thrown.js';

const LOG_EVERY_MS = 60_000;

export class BusObservers {
  private list: BusObserver[] = [];
  private lastLogged = 0;

  constructor(private readonly log: Logger) {}

  add(o: BusObserver): () => void {
    if (o === null || typeof o !== 'object') throw invalid('INVALID_OPTION', `invalid observer ${String(o)}: expected an object with any of dueMoved, requestSent, requestEnded, replyDropped`);
    this.list = [...this.list, o];
    return () => void (this.list = this.list.filter((x) => x !== o));
  }

  /** Calls member `m` of every observer that has it (no work when none is registered). */
  tell<M extends keyof BusObserver>(m: M, ...args: Parameters<NonNullable<BusObserver[M]>>): void {
    for (const o of this.list) {
      const f = o[m] as ((...a: typeof args) => void) | undefined;
      if (f === undefined) continue;
      try {
        f.apply(o, args);
      } catch (err) {
        if (Date.now() - this.lastLogged < LOG_EVERY_MS) continue;
        this.lastLogged = Date.now();
        this.log.error({ err: errForLog(err), call: m }, 'bus observer threw (ignored; logged at most once a minute)');
      }
    }
  }
}
