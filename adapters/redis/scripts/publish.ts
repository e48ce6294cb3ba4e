/**
 * The publish script: an append that happens once per dedup window for a caller-chosen id. Its keys
 * share one hash tag (the topic's stream key), so it runs on one Redis Cluster slot.
 */
import { script } from './script.js';

/**
 * Publish once per dedup window. The marker is written only once the entry exists: when XADD fails
 * (the key holds another type, the stream's last id is exhausted) the error ends the script before
 * the SET, so the caller's retry with the same id is stored, not taken for a duplicate.
 * KEYS[1] stream, KEYS[2] dedup marker `{stream}:dedup:<sha256 of [source, id]>`
 * ARGV[1] window (ms), ARGV[2..] the entry's field/value pairs, in its topic's layout (layout.ts)
 * Returns the new entry id, or nil when the marker exists (a duplicate inside the window).
 */
export const publishOnce = script({
  name: 'agentbusPublishOnce',
  numberOfKeys: 2,
  lua: `
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return id`,
  argv: (stream: string, marker: string, windowMs: number, fields: string[]) => [stream, marker, windowMs, fields],
  reply: (id) => id as string | null,
});
