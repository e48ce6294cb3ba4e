/**
 * The consumer liveness scripts: a heartbeat stamped with the server's clock, and the removal of a
 * dead consumer checked and done at once. Each touches one key, so each runs on one cluster slot.
 */
import { script } from './script.js';

/**
 * A consumer's heartbeat, stamped with the server's clock (hosts' clocks may disagree).
 * KEYS[1] the group's liveness set `<prefix>{agentbus}:alive:<group>` (consumer scored by last beat)
 * ARGV[1] consumer, ARGV[2] how long a member is kept without a beat (ms)
 * Returns the server's time (ms).
 */
export const heartbeat = script({
  name: 'agentbusAlive',
  numberOfKeys: 1,
  lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return now`,
  argv: (aliveSet: string, consumer: string, keepMs: number) => [aliveSet, consumer, keepMs],
  reply: Number,
});

/**
 * Removes a dead consumer from a group, only if it holds nothing and has been idle at least
 * ARGV[3] ms, checked and done at once: a consumer that read meanwhile keeps what it read.
 * KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] minimum idle (ms). Returns 1 when removed.
 */
export const dropConsumer = script({
  name: 'agentbusDropConsumer',
  numberOfKeys: 1,
  lua: `
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] == ARGV[2] then
    if tonumber(f['pending']) == 0 and tonumber(f['idle']) >= tonumber(ARGV[3]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
      return 1
    end
    return 0
  end
end
return 0`,
  argv: (stream: string, group: string, consumer: string, minIdleMs: number) => [stream, group, consumer, minIdleMs],
  reply: Number,
});
