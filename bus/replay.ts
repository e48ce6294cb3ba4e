// bus.replay: hands stored events to a handler in position order per topic, a page at a time,
// moving no group. A delivery that fails is listed in the result: never retried nor dead-lettered.
import type { Handler, ReplayOptions, ReplayResult } from './contract.js';
import type { Delivery, Driver } from './driver.js';
import { asTopic, checkPattern, expandTypes } from './event.js';
import { invalid } from './errors.js';
import { knownKeys } from './validate.js';
import { replayFrom, toStoreBound } from './bounds.js';
import { Context, NO_REASON } from './context.js';
import { describe, stackOf } from './thrown.js';

/** Events read per store round trip; onProgress is called after each page. */
const PAGE = 500;
const REPLAY_KEYS = ['types', 'from', 'to', 'onProgress'];
/** The group and consumer a replayed delivery's context names: no group moves. */
const REPLAY_GROUP = '(replay)';

/** Checks `options`, then replays each topic the types match, in turn. */
export async function replay(driver: Driver, maxBytes: number, options: ReplayOptions, handler: Handler): Promise<ReplayResult> {
  checkReplayOptions(options);
  const from = replayFrom(options.from);
  const to = options.to === undefined ? null : toStoreBound('to', options.to);
  const result: ReplayResult = { handled: 0, failed: [] };
  const signal = new AbortController().signal;
  for (const topic of await matchingTopics(driver, options.types)) {
    const last = await driver.log.last(topic);
    if (last === null) continue;
    const range = { from, to: to ?? { position: last } };
    for (let after: string | null = null; ; ) {
      const page = await driver.log.range(topic, { ...range, after, limit: PAGE, maxBytes });
      for (const d of page) await replayOne(d, topic, handler, signal, result);
      options.onProgress?.(result.handled + result.failed.length);
      if (page.length < PAGE) break;
      after = page[page.length - 1].position;
    }
  }
  return result;
}

function checkReplayOptions(options: ReplayOptions): void {
  if (options === null || typeof options !== 'object') throw invalid('INVALID_OPTION', `replay options must be an object, got ${String(options)}`);
  knownKeys('replay', options, REPLAY_KEYS);
  if (!Array.isArray(options.types) || options.types.length === 0) {
    throw invalid('INVALID_OPTION', `replay types ${JSON.stringify(options.types)}: expected a non-empty array of types or patterns`);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw invalid('INVALID_OPTION', `invalid onProgress ${JSON.stringify(options.onProgress)}: expected a function`);
  }
}

/** The stored topics `types` (exact types and patterns) name. */
async function matchingTopics(driver: Driver, types: string[]): Promise<string[]> {
  types.forEach(checkPattern);
  return expandTypes(types, types.some((t) => t.endsWith('*')) ? await driver.log.topics() : []);
}

/** One stored event through the handler, with the context a subscription's delivery gets (attempt 1). */
async function replayOne(d: Delivery, topic: string, handler: Handler, signal: AbortSignal, result: ReplayResult): Promise<void> {
  const fail = (error: string, stack?: string) => result.failed.push({ type: topic, position: d.position, id: d.event?.id ?? '', error, ...(stack === undefined ? {} : { stack }) });
  if (d.event === null) return void fail(`${d.oversize ? 'oversize' : 'malformed'}: ${d.malformed}`);
  const event = asTopic(d.event, topic);
  const ctx = new Context(1, d.position, REPLAY_GROUP, REPLAY_GROUP, signal);
  try {
    await handler(event, ctx);
  } catch (err) {
    return void fail(describe(err), stackOf(err));
  }
  const reason = ctx.deadLetterReason;
  if (reason === undefined) result.handled++;
  else fail(reason === NO_REASON ? reason : `${NO_REASON}: ${reason}`);
}
