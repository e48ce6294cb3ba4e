/**
 * Delayed publishes' scripts: storing a due entry (once per dedup window for a caller-chosen id)
 * and moving due entries into their topic's stream. A topic's due set `{<stream>}:due` shares its
 * stream's hash tag, so each runs on one Redis Cluster slot.
 *
 * A due entry is a member of the sorted set, scored by its due time (epoch ms): a 36-character
 * unique token, then each field and value of the stream entry it becomes (in its topic's layout,
 * as a publish would XADD them) as `<byte length>:<bytes>`. The length prefixes make any bytes
 * safe in a field, with no JSON decoding in Lua.
 *
 * A named entry (PublishOptions.name) has a token starting with `n` (a UUID's first character is
 * hex, never `n`), and its topic's names hash `{<stream>}:due-names` holds `n:<name>` -> the member
 * and `t:<token>` -> the name. Every script that removes a named member (replace, cancel, move,
 * remove) removes both fields with it, in the same slot, so the hash holds pending entries only.
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

/** Lua: forgets the names hash (KEYS[2]) fields of member `m` when it is a named one. */
const FORGET_NAME = `
local function forget(names, m)
  if string.sub(m, 1, 1) ~= 'n' then return end
  local t = 't:' .. string.sub(m, 1, 36)
  local name = redis.call('HGET', names, t)
  if not name then return end
  redis.call('HDEL', names, t)
  if redis.call('HGET', names, 'n:' .. name) == m then redis.call('HDEL', names, 'n:' .. name) end
end`;

/**
 * Stores a named due entry as its name's only pending one on this topic: the pending member of
 * the name (if any) is removed in the same script, so a mover sees the old one or the new one,
 * never both. With a dedup marker (ARGV[1] > 0), a duplicate changes nothing.
 * KEYS[1] due set, KEYS[2] names hash, KEYS[3] dedup marker (the names hash again when none)
 * ARGV[1] window (ms; 0: no marker), ARGV[2] due time, ARGV[3] the member, ARGV[4] the name
 * Returns 1 when stored, nil for a duplicate.
 */
export const scheduleNamed = script({
  name: 'agentbusScheduleNamed',
  numberOfKeys: 3,
  lua: `${FORGET_NAME}
if ARGV[1] ~= '0' and redis.call('EXISTS', KEYS[3]) == 1 then return false end
local old = redis.call('HGET', KEYS[2], 'n:' .. ARGV[4])
if old then
  redis.call('ZREM', KEYS[1], old)
  forget(KEYS[2], old)
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], 'n:' .. ARGV[4], ARGV[3], 't:' .. string.sub(ARGV[3], 1, 36), ARGV[4])
if ARGV[1] ~= '0' then redis.call('SET', KEYS[3], '1', 'PX', ARGV[1]) end
return 1`,
  argv: (due: string, names: string, marker: string | null, windowMs: number, at: number, member: string, name: string) => [due, names, marker ?? names, marker === null ? 0 : windowMs, at, member, name],
  reply: (r) => r === 1,
});

/**
 * Removes the pending member of a name on this topic, if any.
 * KEYS[1] due set, KEYS[2] names hash; ARGV[1] the name. Returns 1 when one was pending, else 0.
 */
export const cancelNamed = script({
  name: 'agentbusCancelNamed',
  numberOfKeys: 2,
  lua: `${FORGET_NAME}
local old = redis.call('HGET', KEYS[2], 'n:' .. ARGV[1])
if not old then return 0 end
forget(KEYS[2], old)
return redis.call('ZREM', KEYS[1], old)`,
  argv: (due: string, names: string, name: string) => [due, names, name],
  reply: (r) => r === 1,
});

/**
 * Removes one member (found by its token), with its name. KEYS[1] due set, KEYS[2] names hash;
 * ARGV[1] the member. Returns 1 when it was pending (not moved meanwhile), else 0.
 */
export const removeDue = script({
  name: 'agentbusRemoveDue',
  numberOfKeys: 2,
  lua: `${FORGET_NAME}
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
forget(KEYS[2], ARGV[1])
return 1`,
  argv: (due: string, names: string, member: string) => [due, names, member],
  reply: (r) => r === 1,
});

/**
 * Moves up to ARGV[2] entries due at or before ARGV[1] (epoch ms) into the stream, each XADD
 * followed by its ZREM inside this one script: no other client sees one without the other, and
 * an XADD that fails (the key holds another type) ends the script before its entry is removed.
 * A named entry's fields in the names hash go with it.
 * KEYS[1] due set, KEYS[2] stream, KEYS[3] names hash
 * Returns { moved, earliest due time left or nil, the due time of each entry moved... }.
 */
export const moveDue = script({
  name: 'agentbusMoveDue',
  numberOfKeys: 3,
  lua: `${FORGET_NAME}
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
  forget(KEYS[3], m)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
out[2] = first[2] or false
return out`,
  argv: (due: string, stream: string, names: string, now: number, max: number) => [due, stream, names, now, max],
  reply: (r) => {
    const [moved, next, ...dueAts] = r as [number, string | null, ...string[]];
    return { moved, next: next === null ? null : Number(next), dueAts: dueAts.map(Number) };
  },
});

/** The member of a due entry: a unique 36-character token (a named entry's starts with `n`), then the fields length-prefixed. */
export function dueMember(token: string, fields: string[]): string {
  let m = token;
  for (const f of fields) m += `${Buffer.byteLength(f)}:${f}`;
  return m;
}

/** The fields of a member (dueMember's inverse), read as the move script reads them. */
export function memberFields(member: string): string[] {
  const buf = Buffer.from(member);
  const fields: string[] = [];
  for (let pos = 36; pos < buf.length; ) {
    const colon = buf.indexOf(58, pos);
    if (colon < 0) break;
    const n = Number(buf.toString('latin1', pos, colon));
    if (!Number.isInteger(n) || n < 0) break;
    fields.push(buf.toString('utf8', colon + 1, colon + 1 + n));
    pos = colon + 1 + n;
  }
  return fields;
}
