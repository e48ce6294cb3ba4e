/**
 * The scripts of keyed handlers' durable wait and step records (state.ts, bus/keyed/waits.ts and
 * steps.ts), and of the per-key index that finds a key's records without a SCAN.
 *
 * A record is a hash `<tag>:wait:<id>` (`type`, `key`, `deadline`, `matched`) expiring at its
 * deadline + a margin. The index of key K is a sorted set `<tag>:waitkey:<K>` of the ids of K's
 * records, each scored by the epoch ms its record expires at, the set itself expiring with its
 * latest member. The scripts that create and delete records keep it: openWait adds the record (and
 * drops members already past their score), removeWaits and eraseKey remove it, then drop members
 * past their score and move the set's expiry to its latest remaining member (Redis deletes a set
 * left empty), so the index never outlives the key's live records. A record that expires leaves
 * its member until the next such call of the key or the set's own expiry, both bounded by the
 * record's lifetime; a reader skips members whose record is gone. matchWait changes
 * no record's key nor expiry, so no index.
 *
 * An earlier version of agentbus wrote records without indexing them, and may still own the group
 * during a rolling upgrade, or again after a rollback. The group's `<tag>:index-epochs` hash (kept
 * by ownGroup, state.ts) says which epochs this version owned; a reader by key (state.ts) trusts
 * the index alone when the current epoch's owner is this version and a scan ran under an epoch of
 * this version's current unbroken run (indexStatus): every record of an older epoch was indexed
 * by it, every later one by openWait. Otherwise it SCANs the group's records and indexes them
 * first (indexWaits), and records the scan (markScanned) only when the current owner indexes.
 *
 * Every key a script reads or writes is in its KEYS, never built in Lua: Redis documents that a
 * script must declare them, and a cluster relies on it while a slot migrates (the declared keys
 * decide whether the call runs, is redirected, or is told to try again; an undeclared key may have
 * moved already, failing the script halfway). So the client computes the index key of a record
 * (it knows the group, and reads the record's `key` field first when it has only the id), and
 * a script given what the client read checks it again and asks for a new read when it changed.
 * All of a group's keys share its hash tag, hence one slot: any set of them is one script call.
 */
import { script } from './script.js';

/** The server's time in epoch ms, as `now`. */
const nowLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * track(index, id, score): adds `id` scored `score` (epoch ms as text, or '+inf'), drops members
 * scored before now, and makes the set expire with its latest member.
 */
const trackLua = `
local function track(idx, id, score)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. string.format('%.0f', now))
  redis.call('ZADD', idx, score, id)
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if top[2] == 'inf' then redis.call('PERSIST', idx) else redis.call('PEXPIREAT', idx, top[2]) end
end`;

/**
 * tidy(index): drops members scored before now and makes the set expire with its latest remaining
 * member (Redis deletes a set left empty), after members were removed.
 */
const tidyLua = `
local function tidy(idx)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. string.format('%.0f', now))
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if top[2] == 'inf' then redis.call('PERSIST', idx) elseif top[2] then redis.call('PEXPIREAT', idx, top[2]) end
end`;

/**
 * Records and the indexes they belong in, as removeWaits and indexWaits take them: KEYS the record
 * hashes, then each distinct index once; ARGV[1] the number of records, then per record its id, the
 * KEYS position of its index among the indexes (1-based, 0: none, the record was absent when read)
 * and the `key` field read (the index's key).
 */
export interface RecordsAt {
  records: string[];
  indexes: string[];
  ids: string[];
  /** Per record: its index's position in `indexes` (1-based), 0 for none. */
  at: number[];
  keys: string[];
}

const recordsArgv = (r: RecordsAt) => [r.records.length + r.indexes.length, r.records, r.indexes, r.records.length, r.ids.flatMap((id, i) => [id, r.at[i], r.keys[i]])];

/** A wait record's fields as openWait returns them: type, key, deadline, matched. */
export type RawWait = [type: string | null, key: string | null, deadline: string | null, matched: string | null];

/**
 * Create a keyed handler's wait record unless it exists (the first deadline stays), expiring
 * `ttl` ms after its deadline, and index it under its key; returns its fields.
 * KEYS[1] the wait hash, KEYS[2] its key's index; ARGV[1] type, ARGV[2] key, ARGV[3] deadline
 * (epoch ms), ARGV[4] ttl after it (ms), ARGV[5] the record's id
 */
export const openWait = script({
  name: 'agentbusWaitOpen',
  numberOfKeys: 2,
  lua: `${nowLua}${trackLua}
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'type', ARGV[1], 'key', ARGV[2], 'deadline', ARGV[3])
  redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]))
end
local f = redis.call('HMGET', KEYS[1], 'type', 'key', 'deadline', 'matched')
if f[2] == ARGV[2] then track(KEYS[2], ARGV[5], string.format('%.0f', tonumber(f[3]) + tonumber(ARGV[4]))) end
return f`,
  argv: (key: string, index: string, id: string, type: string, k: string, deadline: number, ttlMs: number) => [key, index, type, k, deadline, ttlMs, id],
  reply: (r) => r as RawWait,
});

/**
 * Record a wait's match unless one is recorded; returns the recorded match, nil when the record is gone.
 * KEYS[1] the wait hash; ARGV[1] the event (JSON)
 */
export const matchWait = script({
  name: 'agentbusWaitMatch',
  numberOfKeys: 1,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSETNX', KEYS[1], 'matched', ARGV[1])
return redis.call('HGET', KEYS[1], 'matched')`,
  argv: (key: string, event: string) => [key, event],
  reply: (r) => (r === null ? null : String(r)),
});

/**
 * The `key` field of records (nil when absent), read before removing or indexing them by id.
 * KEYS the record hashes.
 */
export const waitKeys = script({
  name: 'agentbusWaitKeys',
  numberOfKeys: null,
  lua: `
local out = {}
for i, k in ipairs(KEYS) do out[i] = redis.call('HGET', k, 'key') or false end
return out`,
  argv: (keys: string[]) => [keys.length, keys],
  reply: (r) => (r as Array<string | null>).map((k) => k ?? null),
});

/** Lua: true when a record's `key` field is no longer what the client read (RecordsAt). */
const staleLua = `
local function stale()
  for i = 1, tonumber(ARGV[1]) do
    local key = redis.call('HGET', KEYS[i], 'key')
    local at = tonumber(ARGV[2 + 3 * (i - 1) + 1])
    if key and (at == 0 or key ~= ARGV[2 + 3 * (i - 1) + 2]) then return true end
  end
  return false
end`;

/**
 * Delete wait records by id and take them out of their key's index, tidied after (tidy).
 * RecordsAt. Returns how many existed, or -1 (nothing done) when a record's key field is not what
 * the client read (created or replaced meanwhile): read again.
 */
export const removeWaits = script({
  name: 'agentbusWaitRemove',
  numberOfKeys: null,
  lua: `${nowLua}${tidyLua}${staleLua}
if stale() then return -1 end
local n, touched = 0, {}
for i = 1, tonumber(ARGV[1]) do
  local at = tonumber(ARGV[2 + 3 * (i - 1) + 1])
  if at > 0 then
    n = n + redis.call('DEL', KEYS[i])
    local idx = KEYS[tonumber(ARGV[1]) + at]
    redis.call('ZREM', idx, ARGV[2 + 3 * (i - 1)])
    touched[idx] = true
  end
end
for idx in pairs(touched) do tidy(idx) end
return n`,
  argv: (r: RecordsAt) => recordsArgv(r),
  reply: Number,
});

/** The group's epoch counter (0 when absent), and of index-epochs: owner, since, scanned (0 when absent). */
export type IndexStatus = [epoch: number, owner: number, since: number, scanned: number];

/**
 * Read only: KEYS[1] the group's epoch counter, KEYS[2] its index-epochs hash. Returns IndexStatus.
 */
export const indexStatus = script({
  name: 'agentbusWaitsIndexStatus',
  numberOfKeys: 2,
  lua: `
local h = redis.call('HMGET', KEYS[2], 'owner', 'since', 'scanned')
return {tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(h[1] or '0'), tonumber(h[2] or '0'), tonumber(h[3] or '0')}`,
  argv: (epoch: string, indexEpochs: string) => [epoch, indexEpochs],
  reply: (r) => (r as number[]).map(Number) as IndexStatus,
});

/**
 * Records that a scan indexed the group's records under epoch ARGV[1] (its owner being this
 * version, which the caller checked before scanning): `scanned` = max(scanned, ARGV[1]).
 * KEYS[1] index-epochs.
 */
export const markScanned = script({
  name: 'agentbusWaitsMarkScanned',
  numberOfKeys: 1,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('HGET', KEYS[1], 'scanned') or '0') < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'scanned', ARGV[1])
end
return 1`,
  argv: (indexEpochs: string, epoch: number) => [indexEpochs, epoch],
  reply: Number,
});

/**
 * For listings (records found by SCAN, or in a key's index): type, key, deadline and whether a match is
 * recorded of each record of the kind asked for, a step's result too when listing steps; a record
 * of the other kind, or gone, comes back with type nil (so step results are not sent to a listing
 * of waits). KEYS the wait hashes; ARGV[1] '1' for steps, '0' for waits.
 */
export const waitFields = script({
  name: 'agentbusWaitFields',
  numberOfKeys: null,
  lua: `
local steps = ARGV[1] == '1'
local out = {}
for i, k in ipairs(KEYS) do
  local f = redis.call('HMGET', k, 'type', 'key', 'deadline', 'matched')
  if f[1] and (string.sub(f[1], 1, 5) == 'step ') == steps then
    out[i] = {f[1], f[2], f[3], f[4] and 1 or 0, steps and f[4] or false}
  else
    out[i] = {false, false, false, 0, false}
  end
end
return out`,
  argv: (keys: string[], steps: boolean) => [keys.length, keys, steps ? 1 : 0],
  reply: (r) => r as Array<[type: string | null, key: string | null, deadline: string | null, matched: number, result: string | null]>,
});

/**
 * Index records found by SCAN (written by a version without the index): each live one under its
 * key, scored by its remaining time to live. RecordsAt. Returns how many were indexed, or -1
 * (nothing done) when a record's key field is not what the client read: read again.
 */
export const indexWaits = script({
  name: 'agentbusWaitsIndex',
  numberOfKeys: null,
  lua: `${nowLua}${trackLua}${staleLua}
if stale() then return -1 end
local n = 0
for i = 1, tonumber(ARGV[1]) do
  local at = tonumber(ARGV[2 + 3 * (i - 1) + 1])
  local ttl = redis.call('PTTL', KEYS[i])
  if at > 0 and ttl ~= -2 then
    track(KEYS[tonumber(ARGV[1]) + at], ARGV[2 + 3 * (i - 1)], ttl == -1 and '+inf' or string.format('%.0f', now + ttl))
    n = n + 1
  end
end
return n`,
  argv: (r: RecordsAt) => recordsArgv(r),
  reply: Number,
});

/**
 * Erase one key's state and some of its records (`agentbus state rm`): the state hash, each given
 * record whose `key` field is the key, and their members in the key's index (tidied after). The
 * caller read the members from the index first; it calls again while the index still has members
 * (records created meanwhile). KEYS[1] the state hash, KEYS[2] the key's index, KEYS[3..] the
 * records; ARGV[1] the key, ARGV[1 + i] the id of KEYS[2 + i].
 * Returns { 1 when the state or a live record was deleted else 0, the members left in the index }.
 */
export const eraseKey = script({
  name: 'agentbusStateErase',
  numberOfKeys: null,
  lua: `${nowLua}${tidyLua}
local n = redis.call('DEL', KEYS[1])
for i = 3, #KEYS do
  if redis.call('HGET', KEYS[i], 'key') == ARGV[1] then n = n + redis.call('DEL', KEYS[i]) end
  redis.call('ZREM', KEYS[2], ARGV[i - 1])
end
tidy(KEYS[2])
return {n > 0 and 1 or 0, redis.call('ZCARD', KEYS[2])}`,
  argv: (state: string, index: string, records: string[], key: string, ids: string[]) => [2 + records.length, state, index, records, key, ids],
  reply: (r) => ({ erased: Number((r as number[])[0]) === 1, left: Number((r as number[])[1]) }),
});
