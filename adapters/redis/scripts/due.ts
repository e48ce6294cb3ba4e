/**
 * Delayed publishes' scripts: storing a due entry (once per dedup window for a caller-chosen id)
 * and moving due entries into their topic's stream. A topic's due set `{<stream>}:due` shares its
 * stream's hash tag, so each runs on one Redis Cluster slot.
 *
 * A due entry is a member of the sorted set, scored by its due time (epoch ms): a 36-character
 * unique token, then each field and value of the stream entry it becomes (in its topic's layout,
 * as a publish would XADD them) as `<byte length>:<bytes>`. The length prefixes make any bytes
 * safe in a field, with no JSON decoding in Lua.
 */
import { script } from './script.js';

/**
 * Stores a due entry unless the dedup marker exists; the marker is set with it, so a second
 * publish of the same source + id inside the window is dropped whether either was delayed or not.
 * KEYS[1] due set, KEYS[2] dedup marker (as publishOnce's)
 * ARGV[1] window (ms), ARGV[2] due time (epoch ms), ARGV[3] the member
 * Returns 1 when stored, nil for a duplicate.
 */
export const scheduleOnce = script({
  name: 'agentbusScheduleOnce',
  numberOfKeys: 2,
  lua: `
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return 1`,
  argv: (due: string, marker: string, windowMs: number, at: number, member: string) => [due, marker, windowMs, at, member],
  reply: (r) => r === 1,
});

/**
 * Moves up to ARGV[2] entries due at or before ARGV[1] (epoch ms) into the stream, each XADD
 * followed by its ZREM inside this one script: no other client sees one without the other, and
 * an XADD that fails (the key holds another type) ends the script before its entry is removed.
 * KEYS[1] due set, KEYS[2] stream
 * Returns { moved, earliest due time left or nil, the due time of each entry moved... }.
 */
export const moveDue = script({
  name: 'agentbusMoveDue',
  numberOfKeys: 2,
  lua: `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = { #due / 2, false }
for i = 1, #due, 2 do
  local m = due[i]
  out[#out + 1] = due[i + 1]
  local fields = {}
  local pos = 37
  while pos <= #m do
    local colon = string.find(m, ':', pos, true)
    local n = tonumber(string.sub(m, pos, colon - 1))
    fields[#fields + 1] = string.sub(m, colon + 1, colon + n)
    pos = colon + 1 + n
  end
  redis.call('XADD', KEYS[2], '*', unpack(fields))
  redis.call('ZREM', KEYS[1], m)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
out[2] = first[2] or false
return out`,
  argv: (due: string, stream: string, now: number, max: number) => [due, stream, now, max],
  reply: (r) => {
    const [moved, next, ...dueAts] = r as [number, string | null, ...string[]];
    return { moved, next: next === null ? null : Number(next), dueAts: dueAts.map(Number) };
  },
});

/** The member of a due entry: a unique 36-character token, then the fields length-prefixed. */
export function dueMember(token: string, fields: string[]): string {
  let m = token;
  for (const f of fields) m += `${Buffer.byteLength(f)}:${f}`;
  return m;
}
