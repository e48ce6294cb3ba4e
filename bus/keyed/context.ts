// The context of a keyed handler call: the delivery's (context.ts) plus its key and the key's state.
import { Context } from '../context.js';
import type { KeyedDeliveryContext } from './contract.js';

export class KeyedDelivery extends Context implements KeyedDeliveryContext {
  constructor(
    attempt: number,
    position: string,
    group: string,
    consumer: string,
    signal: AbortSignal,
    readonly key: string,
    /** The key's live state; what it holds when the handler resolves is committed. */
    public state: unknown,
  ) {
    super(attempt, position, group, consumer, signal);
  }
}
