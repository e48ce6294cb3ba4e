/**
 * The scripts of keyed handlers' durable wait and step records (state.ts, bus/keyed/waits.ts and
 * steps.ts), and of the per-key index that finds a key's records without a SCAN.
 *
 * A record is a hash `<tag>:wait:<id>` (`type`, `key`, `deadline`, `matched`) expiring at its
 * deadline + a margin. The index of key K is a sorted set `<tag>:waitkey:<K>` of the ids of K's
 * records, each scored by the epoch ms its record expires at, the set itself expiring with its
 * latest member. The scripts that create and delete records keep it: openWait adds the record (and
 * drops members already past their score), removeWaits and eraseKeys remove it. A record that
 * expires leaves its member until the next openWait of the key or the set's own expiry, both
 * bounded by the record's lifetime; a reader skips members whose record is gone. matchWait changes
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
 * The index keys are built in Lua from a prefix the caller sends (`<tag>:waitkey:`), which is in
 * the group's slot like every KEYS entry of the call, as Redis Cluster requires of a script.
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
 * Delete wait records by id and take them out of their key's index.
 * KEYS the wait hashes; ARGV[1] the index prefix (`<tag>:waitkey:`), ARGV[1 + i] the id of KEYS[i].
 * Returns how many existed.
 */
export const removeWaits = script({
  name: 'agentbusWaitRemove',
  numberOfKeys: null,
  lua: `
local n = 0
for i, k in ipairs(KEYS) do
  local key = redis.call('HGET', k, 'key')
  if key then
    n = n + redis.call('DEL', k)
    redis.call('ZREM', ARGV[1] .. key, ARGV[i + 1])
  end
end
return n`,
  argv: (keys: string[], indexPrefix: string, ids: string[]) => [keys.length, keys, indexPrefix, ids],
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

/** A listed record: id, type, key, deadline, 1 when a match is recorded, a step's result when asked for. */
export type RawListing = [id: string, type: string, key: string, deadline: string, matched: number, result: string | null];

/**
 * The live wait records (ARGV[2] '0') or step records ('1', with their results) of one key, from its
 * index (the caller made sure the group is indexed). KEYS[1] the key's index; ARGV[1] the record
 * prefix (`<tag>:wait:`), ARGV[2] steps. Returns the records (RawListing each, in no order).
 */
export const keyWaits = script({
  name: 'agentbusWaitsOfKey',
  numberOfKeys: 1,
  lua: `${nowLua}
local steps = ARGV[2] == '1'
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], string.format('%.0f', now), '+inf')) do
  local f = redis.call('HMGET', ARGV[1] .. id, 'type', 'key', 'deadline', 'matched')
  if f[1] and (string.sub(f[1], 1, 5) == 'step ') == steps then
    out[#out + 1] = {id, f[1], f[2], f[3], f[4] and 1 or 0, steps and f[4] or false}
  end
end
return out`,
  argv: (index: string, recordPrefix: string, steps: boolean) => [index, recordPrefix, steps ? 1 : 0],
  reply: (r) => r as RawListing[],
});

/**
 * For the group-wide listing (records found by SCAN): type, key, deadline and whether a match is
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
 * Index records found by SCAN (written before the index existed): each live one under its key,
 * scored by its remaining time to live. KEYS the wait hashes; ARGV[1] the index prefix, ARGV[1 + i]
 * the id of KEYS[i]. Returns how many were indexed.
 */
export const indexWaits = script({
  name: 'agentbusWaitsIndex',
  numberOfKeys: null,
  lua: `${nowLua}${trackLua}
local n = 0
for i, k in ipairs(KEYS) do
  local key = redis.call('HGET', k, 'key')
  local ttl = redis.call('PTTL', k)
  if key and ttl ~= -2 then
    track(ARGV[1] .. key, ARGV[i + 1], ttl == -1 and '+inf' or string.format('%.0f', now + ttl))
    n = n + 1
  end
end
return n`,
  argv: (keys: string[], indexPrefix: string, ids: string[]) => [keys.length, keys, indexPrefix, ids],
  reply: Number,
});

/**
 * Erase keys of a group (`agentbus state rm`): each key's state hash, the records its index names
 * (those whose `key` field is the key), and the index (the caller made sure the group is indexed).
 * KEYS per erased key its state hash and its index; ARGV[1] the record prefix (`<tag>:wait:`),
 * ARGV[1 + i] the i-th key. Returns per key 1 when a state or a live record was deleted, else 0.
 */
export const eraseKeys = script({
  name: 'agentbusStateErase',
  numberOfKeys: null,
  lua: `
local out = {}
for i = 1, #ARGV - 1 do
  local key, idx = ARGV[i + 1], KEYS[2 * i]
  local n = redis.call('DEL', KEYS[2 * i - 1])
  for _, id in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    local w = ARGV[1] .. id
    if redis.call('HGET', w, 'key') == key then n = n + redis.call('DEL', w) end
  end
  redis.call('DEL', idx)
  out[i] = n > 0 and 1 or 0
end
return out`,
  argv: (pairs: string[], recordPrefix: string, keys: string[]) => [pairs.length, pairs, recordPrefix, keys],
  reply: (r) => r as number[],
});
