/**
 * The scripts behind stats that read a stream's ends and count entries on the server, so no entry's
 * fields cross the network. Each touches one stream key, so each runs on one Redis Cluster slot.
 */
import { script } from './script.js';

/**
 * A stream's length and first and last ids, without any entry's fields.
 * KEYS[1] stream. Returns { length, first id or '', last id or '' }.
 */
export const streamEnds = script({
  name: 'agentbusStreamEnds',
  numberOfKeys: 1,
  lua: `
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return { redis.call('XLEN', KEYS[1]), first[1] and first[1][1] or '', last[1] and last[1][1] or '' }`,
  argv: (stream: string) => [stream],
  reply: (r) => r as [length: number, first: string, last: string],
});

/**
 * How many entries follow an id, counting at most a cap (a bounded recount of lag).
 * KEYS[1] stream; ARGV[1] id (exclusive), ARGV[2] cap.
 */
export const countAfter = script({
  name: 'agentbusCountAfter',
  numberOfKeys: 1,
  lua: `return #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))`,
  argv: (stream: string, after: string, cap: number) => [stream, after, cap],
  reply: Number,
});
