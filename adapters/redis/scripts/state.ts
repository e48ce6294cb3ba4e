/**
 * The keyed-state scripts (state.ts): taking, renewing and giving up a group's ownership, loading
 * records, committing a batch, and the sizes `state ls` shows. Every key they touch carries the
 * group's tag `{agentbus:<group>}` (one cluster slot), except the streams the single-node commit
 * acknowledges, which only a non-cluster Redis is given.
 */
import { script } from './script.js';

/**
 * Take a group, or renew it for its holder. The owner record is `<epoch> <consumer>` with a PX lease;
 * the epoch counter beside it has no TTL, so an epoch is never handed out twice even after the
 * owner record expired.
 * KEYS[1] owner, KEYS[2] epoch counter; ARGV[1] consumer, ARGV[2] lease (ms)
 * Returns { epoch, 1 when acquired / 0 when renewed }, or nil when another consumer holds it.
 */
export const ownGroup = script({
  name: 'agentbusStateOwn',
  numberOfKeys: 2,
  lua: `
local cur = redis.call('GET', KEYS[1])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  if sp and string.sub(cur, sp + 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {tonumber(string.sub(cur, 1, sp - 1)), 0}
  end
  return false
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {epoch, 1}`,
  argv: (owner: string, epochKey: string, consumer: string, leaseMs: number) => [owner, epochKey, consumer, leaseMs],
  reply: (r) => (r === null ? null : { epoch: Number((r as number[])[0]), acquired: (r as number[])[1] === 1 }),
});

/**
 * Give a group up, only if `<epoch> <consumer>` still holds it.
 * KEYS[1] owner; ARGV[1] the owner record expected. Returns 1 when given up.
 */
export const disownGroup = script({
  name: 'agentbusStateDisown',
  numberOfKeys: 1,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
  argv: (owner: string, record: string) => [owner, record],
  reply: Number,
});

/** A record's fields as loadStates returns them: version, state, applied JSON, updatedAt (nil when absent). */
export type RawRecord = [v: string | null, s: string | null, a: string | null, t: string | null];

/**
 * Records of many keys in one call. KEYS: the state hashes. Returns per key HMGET v s a t.
 */
export const loadStates = script({
  name: 'agentbusStateLoad',
  numberOfKeys: null,
  lua: `
local out = {}
for i, k in ipairs(KEYS) do out[i] = redis.call('HMGET', k, 'v', 's', 'a', 't') end
return out`,
  argv: (keys: string[]) => [keys.length, keys],
  reply: (r) => r as RawRecord[],
});

/**
 * Version, updatedAt and state size (bytes) of many keys, for listings. KEYS: the state hashes.
 * Returns per key { v, t, HSTRLEN s } (v nil when the record is gone).
 */
export const stateSizes = script({
  name: 'agentbusStateSizes',
  numberOfKeys: null,
  lua: `
local out = {}
for i, k in ipairs(KEYS) do
  local f = redis.call('HMGET', k, 'v', 't')
  out[i] = {f[1], f[2], redis.call('HSTRLEN', k, 's')}
end
return out`,
  argv: (keys: string[]) => [keys.length, keys],
  reply: (r) => r as Array<[v: string | null, t: string | null, bytes: number]>,
});

/** One write of a commit, as the script takes it. `acks`: [stream key, entry id] pairs. */
export interface CommitWrite {
  key: string;
  expectVersion: number;
  state: string | null;
  applied: string;
  ttlMs: number;
  acks: Array<[stream: string, id: string]>;
}

/**
 * Stream ids compared in Lua without numbers (their parts reach 2^64-1, past a double's precision):
 * digit strings without leading zeros order by length, then text.
 */
const compareIdsLua = `
local function cmpnum(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function cmpid(a, b)
  local am, as = string.match(a, '^(%d+)-?(%d*)$')
  local bm, bs = string.match(b, '^(%d+)-?(%d*)$')
  if not am or not bm then return a == b and 0 or (a < b and -1 or 1) end
  local c = cmpnum(am, bm)
  if c ~= 0 then return c end
  return cmpnum(as == '' and '0' or as, bs == '' and '0' or bs)
end`;

/**
 * A keyed group's commit: the owner check, then each write under its version check, then the
 * acknowledgements, in one script (one round trip, atomic).
 * KEYS[1] owner; KEYS[2..1+W] the writes' state hashes; KEYS[2+W..] streams to acknowledge on
 * (single node only: on a cluster they live in other slots and `acks` must be empty).
 * ARGV[1] the owner record expected (`<epoch> <consumer>`), ARGV[2] group, ARGV[3] W;
 * then per write: expected version, 1 to delete / 0 to store, state, applied JSON ('{}': none),
 * TTL (ms, 0: none), ack count n, then n pairs of (stream's KEYS index, entry id);
 * then the count of acks outside any write and their pairs.
 * Each applied write: version + 1, state, applied positions merged (never moved back), updatedAt =
 * the server's time, PEXPIRE or PERSIST (a new record has no TTL to remove); a deleted record is removed. A write whose stored version
 * is not the expected one is skipped with its acks.
 * Returns { 1, indexes (1-based) of conflicting writes... }, or { 0, the owner record found } when
 * the group is not held under ARGV[1] (nothing written or acknowledged then).
 */
export const commitStates = script({
  name: 'agentbusStateCommit',
  numberOfKeys: null,
  lua: `${compareIdsLua}
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return {0, cur or ''} end
local group, w = ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local conflicts, acks, applied = {}, {}, {}
local function take(i, n)
  for j = 0, n - 1 do
    local s = tonumber(ARGV[i + 2 * j])
    local ids = acks[s]
    if not ids then ids = {}; acks[s] = ids end
    ids[#ids + 1] = ARGV[i + 2 * j + 1]
  end
  return i + 2 * n
end
local i = 4
for k = 1, w do
  local key = KEYS[1 + k]
  local expect, del, state, app, ttl, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  i = i + 6
  local v = tonumber(redis.call('HGET', key, 'v') or '0')
  if v ~= tonumber(expect) then
    conflicts[#conflicts + 1] = k
    i = i + 2 * n
  else
    if del == '1' then
      redis.call('DEL', key)
    else
      local fields = {'v', v + 1, 's', state, 't', string.format('%.0f', now)}
      if app ~= '{}' then
        local old = redis.call('HGET', key, 'a')
        if old then
          local merged = cjson.decode(old)
          for sk, pos in pairs(cjson.decode(app)) do
            if merged[sk] == nil or cmpid(pos, merged[sk]) > 0 then merged[sk] = pos end
          end
          app = cjson.encode(merged)
        end
        fields[#fields + 1] = 'a'
        fields[#fields + 1] = app
      end
      redis.call('HSET', key, unpack(fields))
      if ttl > 0 then redis.call('PEXPIRE', key, ttl) elseif v > 0 then redis.call('PERSIST', key) end
    end
    i = take(i, n)
  end
end
take(i + 1, tonumber(ARGV[i]))
for s, ids in pairs(acks) do
  for j = 1, #ids, 1000 do
    redis.call('XACK', KEYS[s], group, unpack(ids, j, math.min(j + 999, #ids)))
  end
end
table.insert(conflicts, 1, 1)
return conflicts`,
  argv: (owner: string, record: string, group: string, writes: CommitWrite[], acks: Array<[stream: string, id: string]>) => {
    // KEYS: owner, the writes' hashes, then each stream once; acks name their stream by KEYS index.
    const streams = new Map<string, number>();
    const keys = [owner, ...writes.map((w) => w.key)];
    const at = (stream: string) => {
      let n = streams.get(stream);
      if (n === undefined) {
        streams.set(stream, (n = keys.length + streams.size + 1));
      }
      return n;
    };
    const args: unknown[] = [record, group, writes.length];
    for (const w of writes) {
      args.push(w.expectVersion, w.state === null ? 1 : 0, w.state ?? '', w.applied, w.ttlMs, w.acks.length);
      for (const [s, id] of w.acks) args.push(at(s), id);
    }
    args.push(acks.length);
    for (const [s, id] of acks) args.push(at(s), id);
    return [keys.length + streams.size, ...keys, ...streams.keys(), ...args];
  },
  reply: (r) => {
    const [ok, ...rest] = r as [number, ...unknown[]];
    return ok === 1 ? { ok: true as const, conflicts: rest.map(Number) } : { ok: false as const, owner: String(rest[0]) };
  },
});

/** A wait record's fields as openWait and matchWait return them: type, key, deadline, matched. */
export type RawWait = [type: string | null, key: string | null, deadline: string | null, matched: string | null];

/**
 * Create a keyed handler's wait record unless it exists (the first deadline stays), expiring
 * `ttl` ms after its deadline; returns its fields.
 * KEYS[1] the wait hash; ARGV[1] type, ARGV[2] key, ARGV[3] deadline (epoch ms), ARGV[4] ttl after it (ms)
 */
export const openWait = script({
  name: 'agentbusWaitOpen',
  numberOfKeys: 1,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'type', ARGV[1], 'key', ARGV[2], 'deadline', ARGV[3])
  redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]))
end
return redis.call('HMGET', KEYS[1], 'type', 'key', 'deadline', 'matched')`,
  argv: (key: string, type: string, k: string, deadline: number, ttlMs: number) => [key, type, k, deadline, ttlMs],
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
