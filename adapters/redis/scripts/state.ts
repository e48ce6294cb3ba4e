/**
 * The keyed-state scripts (state.ts): taking, renewing and giving up a group's ownership, loading
 * records, committing a batch, and the sizes `state ls` shows. Every key they touch carries the
 * group's tag `{agentbus:<group>}` (one cluster slot), except the streams the single-node commit
 * acknowledges, which only a non-cluster Redis is given.
 */
import type { Delivery } from '../../../bus/driver.js';
import { script } from './script.js';

/**
 * Take a group, or renew it for its holder. The owner record is `<epoch> <consumer>` with a PX lease;
 * the epoch counter beside it has no TTL, so an epoch is never handed out twice even after the
 * owner record expired.
 * An acquisition also records, in the group's index-epochs hash, that this version (which indexes
 * every wait and step record it writes, waits.ts) owns epoch E: `owner` = E; `since` = E unless
 * `owner` was E - 1 (the previous owner was this version too: the run goes on); at epoch 1 also
 * `scanned` = 1 (no earlier owner: nothing to scan). An earlier version's ownGroup INCRs the
 * counter without touching the hash, so `owner` < the epoch tells a reader that the current owner
 * does not index. Readers by key use it to decide whether to scan (state.ts, waits.ts indexStatus).
 * KEYS[1] owner, KEYS[2] epoch counter, KEYS[3] index-epochs; ARGV[1] consumer, ARGV[2] lease (ms)
 * Returns { epoch, 1 when acquired / 0 when renewed }, or nil when another consumer holds it.
 */
export const ownGroup = script({
  name: 'agentbusStateOwn',
  numberOfKeys: 3,
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
if tonumber(redis.call('HGET', KEYS[3], 'owner')) ~= epoch - 1 then redis.call('HSET', KEYS[3], 'since', epoch) end
redis.call('HSET', KEYS[3], 'owner', epoch)
if epoch == 1 then redis.call('HSET', KEYS[3], 'scanned', 1) end
return {epoch, 1}`,
  argv: (owner: string, epochKey: string, indexEpochs: string, consumer: string, leaseMs: number) => [owner, epochKey, indexEpochs, consumer, leaseMs],
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

/** JSON text on one line: JSON.stringify never writes a raw newline; any other JSON is rewritten (same value). */
const oneLine = (json: string) => (json.includes('\n') ? JSON.stringify(JSON.parse(json)) : json);

/** One write of a commit, as the script takes it. */
export interface CommitWrite {
  /** The state hash. */
  key: string;
  expectVersion: number;
  /** The state JSON; null deletes the record. */
  state: string | null;
  /** Applied positions to merge, as JSON; null: none (a single node never sends any). */
  applied: string | null;
  ttlMs: number;
  /** With ttlMs 0: the record may carry an expiry from an earlier write, which PERSIST removes. */
  persist: boolean;
  /** Deliveries acknowledged with it (`ref`: their stream key; single node only). */
  acks: Delivery[];
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
 *
 * The writes travel in a few newline-separated texts rather than as arguments of their own: the
 * commit runs once per batch of up to 512 deliveries, and ioredis spends about a microsecond on
 * each argument (measured on the bench's drain: with ten arguments a write, the commit was a
 * third of the keyed consumer's CPU). A write costs its hash in KEYS and a line in each text.
 * KEYS[1] owner; KEYS[2..1+W] the writes' state hashes; KEYS[2+W..1+W+S] the S streams acknowledged
 * on (single node only: on a cluster they live in other slots and no write carries acks).
 * ARGV[1] the owner record expected (`<epoch> <consumer>`), ARGV[2] group, ARGV[3] W, ARGV[4] the
 * writes' TTL (ms, 0: none), ARGV[5] S, then three texts of one line per write, each line ended
 * by a newline:
 * - ARGV[6] heads: the expected version alone (one ack, no flags), or `<version> <n> <flags>` with
 *   n the write's acks and flags among d (delete the record), p (PERSIST it when written with TTL
 *   0: it may carry an expiry), a (applied positions follow), t (a TTL of its own follows);
 * - ARGV[7] states: the state JSON ('' to delete); JSON text as JSON.stringify writes it has no
 *   raw newline, and any other is rewritten so first;
 * - ARGV[8] acks: the write's entry ids separated by spaces (`<stream number 1..S> <id>` pairs when
 *   S > 1), then one more line, the acks outside any write;
 * then, in write order, the applied JSON of each write flagged a and the TTL of each flagged t.
 * Each applied write: version + 1, state, applied positions merged (never moved back), updatedAt =
 * the server's time, PEXPIRE with a TTL, else PERSIST when flagged; a deleted record is removed. A
 * write whose stored version is not the expected one is skipped with its acks.
 * Returns { 1, indexes (1-based) of conflicting writes... }, or { 0, the owner record found } when
 * the group is not held under ARGV[1] (nothing written or acknowledged then).
 */
export const commitStates = script({
  name: 'agentbusStateCommit',
  numberOfKeys: null,
  lua: `${compareIdsLua}
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return {0, cur or ''} end
local group, w, dttl, ns = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local heads, states, ackl = ARGV[6], ARGV[7], ARGV[8]
local find, sub, gmatch = string.find, string.sub, string.gmatch
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local conflicts, acks = {}, {}
for s = 1, ns do acks[s] = {} end
local function line(text, pos)
  local e = find(text, '\\n', pos, true)
  return sub(text, pos, e - 1), e + 1
end
local function take(l, one)
  if ns == 1 then
    local ids = acks[1]
    if one then ids[#ids + 1] = l; return end
    for id in gmatch(l, '%S+') do ids[#ids + 1] = id end
    return
  end
  local s = nil
  for tok in gmatch(l, '%S+') do
    if s == nil then s = tonumber(tok) else local ids = acks[s]; ids[#ids + 1] = tok; s = nil end
  end
end
local hp, sp, ap, x = 1, 1, 1, 9
for k = 1, w do
  local key, head, state, al = KEYS[1 + k]
  head, hp = line(heads, hp)
  state, sp = line(states, sp)
  al, ap = line(ackl, ap)
  local expect, n, flags = tonumber(head), 1, ''
  if not expect then
    local e, c, f = string.match(head, '^(%d+) (%d+) (%a*)$')
    expect, n, flags = tonumber(e), tonumber(c), f
  end
  local app, ttl, del, persist = nil, dttl, false, false
  if flags ~= '' then
    if find(flags, 'a', 1, true) then app = ARGV[x]; x = x + 1 end
    if find(flags, 't', 1, true) then ttl = tonumber(ARGV[x]); x = x + 1 end
    del = find(flags, 'd', 1, true) ~= nil
    persist = find(flags, 'p', 1, true) ~= nil
  end
  local v = tonumber(redis.call('HGET', key, 'v') or '0')
  if v ~= expect then
    conflicts[#conflicts + 1] = k
  else
    if del then
      redis.call('DEL', key)
    elseif app then
      local old = redis.call('HGET', key, 'a')
      if old then
        local merged = cjson.decode(old)
        for sk, pos in pairs(cjson.decode(app)) do
          if merged[sk] == nil or cmpid(pos, merged[sk]) > 0 then merged[sk] = pos end
        end
        app = cjson.encode(merged)
      end
      redis.call('HSET', key, 'v', v + 1, 's', state, 't', now, 'a', app)
    else
      redis.call('HSET', key, 'v', v + 1, 's', state, 't', now)
    end
    if del then
    elseif ttl > 0 then redis.call('PEXPIRE', key, ttl)
    elseif persist and v > 0 then redis.call('PERSIST', key) end
    if n > 0 then take(al, n == 1) end
  end
end
take(line(ackl, ap), false)
for s = 1, ns do
  local ids = acks[s]
  for j = 1, #ids, 1000 do
    redis.call('XACK', KEYS[1 + w + s], group, unpack(ids, j, math.min(j + 999, #ids)))
  end
end
table.insert(conflicts, 1, 1)
return conflicts`,
  argv: (owner: string, record: string, group: string, writes: CommitWrite[], acks: Delivery[]) => {
    // Streams numbered 1..S in the order first acknowledged.
    const streams = new Map<string, number>();
    for (const w of writes) for (const d of w.acks) if (!streams.has(d.ref)) streams.set(d.ref, streams.size + 1);
    for (const d of acks) if (!streams.has(d.ref)) streams.set(d.ref, streams.size + 1);
    const pairs = streams.size > 1;
    const ackLine = (ds: Delivery[]) => {
      if (ds.length === 1 && !pairs) return ds[0].position;
      let l = '';
      for (const d of ds) l += `${l === '' ? '' : ' '}${pairs ? `${streams.get(d.ref)} ` : ''}${d.position}`;
      return l;
    };
    const ttl = writes.length > 0 ? writes[0].ttlMs : 0;
    const out: unknown[] = [0, owner];
    const extras: unknown[] = [];
    let heads = '';
    let states = '';
    let ackl = '';
    for (const w of writes) {
      out.push(w.key);
      const own = w.ttlMs !== ttl;
      const flags = `${w.state === null ? 'd' : ''}${w.persist ? 'p' : ''}${w.applied !== null ? 'a' : ''}${own ? 't' : ''}`;
      heads += flags === '' && w.acks.length === 1 ? `${w.expectVersion}\n` : `${w.expectVersion} ${w.acks.length} ${flags}\n`;
      states += `${oneLine(w.state ?? '')}\n`;
      ackl += `${ackLine(w.acks)}\n`;
      if (w.applied !== null) extras.push(w.applied);
      if (own) extras.push(w.ttlMs);
    }
    ackl += `${ackLine(acks)}\n`;
    for (const s of streams.keys()) out.push(s);
    out[0] = out.length - 1;
    out.push(record, group, writes.length, ttl, streams.size, heads, states, ackl);
    return extras.length > 0 ? out.concat(extras) : out;
  },
  reply: (r) => {
    const [ok, ...rest] = r as [number, ...unknown[]];
    return ok === 1 ? { ok: true as const, conflicts: rest.map(Number) } : { ok: false as const, owner: String(rest[0]) };
  },
});
