import { Script } from '../redis/connection.js';

/**
 * Rate-limit and quota decisions, each for `n` requests of one key, atomically: a sliding-
 * window counter (the previous fixed window weighted by its remaining overlap, plus the
 * current one) and a period counter. Of each decision's `n`, the first `admitted` pass, as if
 * decided one by one; the rest are refused and increment nothing. One call can carry the
 * decisions of many keys (all in one hash slot on a Cluster). A decision can also carry
 * `counted`: requests a node already admitted on headroom (see RedisRateLimiter), which are
 * counted first and never refused.
 * KEYS, three per decision: current window, previous window, quota period.
 * ARGV, seven per decision: rate limit (-1: none), window ms, ms elapsed in the window, quota
 * limit (-1: none), quota expiry (ms since the epoch), n, counted.
 * Returns five numbers per decision: admitted, why the rest were refused (1 rate limit,
 * 2 quota, 0 none), current, previous, quota used — the counts after admitting.
 */
export const RATE_LIMIT = new Script(`
local out = {}
for d = 0, #KEYS / 3 - 1 do
  local k, a = d * 3, d * 7
  local limit = tonumber(ARGV[a + 1])
  local size = tonumber(ARGV[a + 2])
  local qlimit = tonumber(ARGV[a + 4])
  local admit, why = tonumber(ARGV[a + 6]), 0
  local counted = tonumber(ARGV[a + 7])
  local cur, prev, used = 0, 0, 0
  if limit >= 0 then
    cur = tonumber(redis.call('GET', KEYS[k + 1]) or '0')
    prev = tonumber(redis.call('GET', KEYS[k + 2]) or '0')
    local room = math.floor(limit - (prev * (1 - tonumber(ARGV[a + 3]) / size) + cur)) - counted
    if room < admit then admit, why = math.max(room, 0), 1 end
  end
  if qlimit >= 0 then
    used = tonumber(redis.call('GET', KEYS[k + 3]) or '0')
    local room = qlimit - used - counted
    if room < admit then admit, why = math.max(room, 0), 2 end
  end
  local total = admit + counted
  if total > 0 then
    if limit >= 0 then
      cur = redis.call('INCRBY', KEYS[k + 1], total)
      if cur == total then redis.call('PEXPIRE', KEYS[k + 1], 2 * size + 1000) end
    end
    if qlimit >= 0 then
      used = redis.call('INCRBY', KEYS[k + 3], total)
      if used == total then redis.call('PEXPIREAT', KEYS[k + 3], ARGV[a + 5]) end
    end
  end
  out[#out + 1] = admit
  out[#out + 1] = why
  out[#out + 1] = cur
  out[#out + 1] = prev
  out[#out + 1] = used
end
return out
`);
