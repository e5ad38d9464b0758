import { Script } from './connection.js';

// Every store record lives under one hash tag, `<prefix>{store}`, so a batch touching many
// records is one script on one Redis Cluster slot. The layout, under that base:
//   :version  INCR'd once per committed batch          :seq     creation-order counter
//   :e:<type> hash id → record JSON (keys carry seq)    :hash    hash secret hash → key id
//   :g:<id>, :o:<id>, :w:<id>  sets of key ids per group/owner/workspace
//   :order    zset seq → key id
//   :audit, :audit:<targetId>  lists, newest first      :u:<id>  hash of usage counts per key
//   :act:<id> zset of a key's activity (score: its time), the newest `keys.activityPerKey` kept
//   :feed     stream, one entry `<version>-1` per batch :nodes   hash node id → report JSON
//   :head     random id of the last commit; each feed entry names its own and the one before

/**
 * One atomic batch: preconditions, then every write, the audit entries and the change-feed
 * entry, under one version. Refusals are raised as `KG_<CODE>` errors and write nothing.
 * KEYS[1] = <base>:version; ARGV = base, batch envelope (JSON), feed length cap, a fresh
 * random id for this commit.
 * Record JSON travels as strings inside the envelope and is stored as given: the script only
 * decodes JSON (to read indexes and tokens), never re-encodes it.
 */
export const COMMIT = new Script(`
local base = ARGV[1]
local b = cjson.decode(ARGV[2])

local function token(raw)
  local v = cjson.decode(raw)
  if type(v.version) == 'number' then return string.format('%d', v.version) end
  if type(v.updatedAt) == 'string' then return v.updatedAt end
  return v.createdAt
end

for _, p in ipairs(b.expect) do
  local raw = redis.call('HGET', base .. ':e:' .. p.type, p.id)
  if p.token == cjson.null then
    if raw then return redis.error_reply('KG_CONFLICT') end
  elseif (not raw) or token(raw) ~= p.token then
    return redis.error_reply('KG_CONFLICT')
  end
end
for _, g in ipairs(b.emptyGroups) do
  if redis.call('SCARD', base .. ':g:' .. g) > 0 then return redis.error_reply('KG_GROUP_IN_USE') end
end
for _, o in ipairs(b.emptyOwners) do
  if redis.call('SCARD', base .. ':o:' .. o) > 0 then return redis.error_reply('KG_OWNER_IN_USE') end
end
for _, w in ipairs(b.emptyWorkspaces) do
  if redis.call('SCARD', base .. ':w:' .. w) > 0 then return redis.error_reply('KG_WORKSPACE_IN_USE') end
end

local v = redis.call('INCR', KEYS[1])

local function unindex(raw)
  local k = cjson.decode(raw)
  redis.call('HDEL', base .. ':hash', k.secretHash)
  for _, r in ipairs(k.retiredSecrets) do redis.call('HDEL', base .. ':hash', r.hash) end
  if type(k.groupId) == 'string' then redis.call('SREM', base .. ':g:' .. k.groupId, k.id) end
  if type(k.ownerId) == 'string' then redis.call('SREM', base .. ':o:' .. k.ownerId, k.id) end
  redis.call('SREM', base .. ':w:' .. k.workspaceId, k.id)
  return k
end

for _, op in ipairs(b.ops) do
  local tbl = base .. ':e:' .. op.type
  if op.op == 'put' then
    if op.type == 'key' then
      local prevRaw = redis.call('HGET', tbl, op.id)
      local seq
      if prevRaw then
        seq = unindex(prevRaw).seq
      else
        seq = redis.call('INCR', base .. ':seq')
      end
      redis.call('HSET', tbl, op.id, '{"seq":' .. string.format('%d', seq) .. ',' .. string.sub(op.json, 2))
      redis.call('ZADD', base .. ':order', seq, op.id)
      for _, h in ipairs(op.hashes) do redis.call('HSET', base .. ':hash', h, op.id) end
      if type(op.groupId) == 'string' then redis.call('SADD', base .. ':g:' .. op.groupId, op.id) end
      if type(op.ownerId) == 'string' then redis.call('SADD', base .. ':o:' .. op.ownerId, op.id) end
      redis.call('SADD', base .. ':w:' .. op.workspaceId, op.id)
    else
      redis.call('HSET', tbl, op.id, op.json)
    end
  elseif op.type == 'key' then
    local prevRaw = redis.call('HGET', tbl, op.id)
    if prevRaw then
      unindex(prevRaw)
      redis.call('HDEL', tbl, op.id)
      redis.call('ZREM', base .. ':order', op.id)
      redis.call('DEL', base .. ':u:' .. op.id)
      redis.call('DEL', base .. ':act:' .. op.id)
    end
  else
    redis.call('HDEL', tbl, op.id)
  end
end

for _, a in ipairs(b.audit) do
  redis.call('LPUSH', base .. ':audit', a.json)
  redis.call('LPUSH', base .. ':audit:' .. a.target, a.json)
end

-- Each commit names the one before it: a Redis that came back without its last writes, and
-- hands their version numbers out again, cannot pass its new commits off as the old ones.
local prev = redis.call('GET', base .. ':head') or ''
redis.call('SET', base .. ':head', ARGV[4])
local t = redis.call('TIME')
local at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XADD', base .. ':feed', 'MAXLEN', '~', ARGV[3], string.format('%d', v) .. '-1', 'at', string.format('%d', at), 'c', b.changes, 'h', ARGV[4], 'p', prev)
return v
`);

/**
 * The data plane's read, in one round trip: a key by secret hash or by id, with its owner.
 * KEYS[1] = <base>:hash; ARGV = base, 'hash' | 'id', value. Returns false or {key, owner|''}.
 */
export const LOOKUP = new Script(`
local base = ARGV[1]
local id = ARGV[3]
if ARGV[2] == 'hash' then
  id = redis.call('HGET', KEYS[1], ARGV[3])
  if not id then return false end
end
local raw = redis.call('HGET', base .. ':e:key', id)
if not raw then return false end
local owner = ''
local ownerId = cjson.decode(raw).ownerId
if type(ownerId) == 'string' then owner = redis.call('HGET', base .. ':e:owner', ownerId) or '' end
return {raw, owner}
`);

/**
 * Adds a batch of usage counts; keys that no longer exist are skipped.
 * KEYS[1] = <base>:e:key; ARGV = base, JSON [{k: keyId, o: {outcome: n}, at: ISO time}].
 */
export const RECORD_USAGE = new Script(`
local base = ARGV[1]
for _, d in ipairs(cjson.decode(ARGV[2])) do
  if redis.call('HEXISTS', KEYS[1], d.k) == 1 then
    local u = base .. ':u:' .. d.k
    for outcome, n in pairs(d.o) do
      redis.call('HINCRBY', u, 'o:' .. outcome, n)
      redis.call('HINCRBY', u, 'total', n)
    end
    local last = redis.call('HGET', u, 'last')
    if (not last) or last < d.at then redis.call('HSET', u, 'last', d.at) end
  end
end
return 1
`);

/**
 * A batch of activity records, each added to its key's sorted set by its time (nodes' batches
 * arrive out of order; the set keeps them in time order), which is then trimmed to the newest
 * ARGV[2]; records of keys that do not exist (deleted meanwhile) are dropped.
 * KEYS[1] = <base>:e:key; ARGV = base, records kept per key, JSON [[keyId, atMs, recordJson], …].
 */
export const RECORD_ACTIVITY = new Script(`
local base = ARGV[1]
local keep = tonumber(ARGV[2])
local touched = {}
for _, d in ipairs(cjson.decode(ARGV[3])) do
  if redis.call('HEXISTS', KEYS[1], d[1]) == 1 then
    local set = base .. ':act:' .. d[1]
    redis.call('ZADD', set, d[2], d[3])
    touched[set] = true
  end
end
for set in pairs(touched) do redis.call('ZREMRANGEBYRANK', set, 0, -(keep + 1)) end
return 1
`);

/**
 * A page of an audit list (newest at its head), read atomically with its length so positions
 * (0 = oldest, counted from the tail) stay stable while entries are pushed.
 * KEYS[1] = the list; ARGV = before (-1: from the newest), limit. Returns {before, entries}.
 */
export const AUDIT_PAGE = new Script(`
local len = redis.call('LLEN', KEYS[1])
local before = tonumber(ARGV[1])
if before < 0 or before > len then before = len end
if before == 0 then return {0, {}} end
local start = len - before
return {before, redis.call('LRANGE', KEYS[1], start, start + tonumber(ARGV[2]) - 1)}
`);

/**
 * Adds keys written before the per-workspace sets existed to their workspace's set: each id
 * still present is read and indexed inside the script, so a key deleted meanwhile is never added.
 * KEYS[1] = <base>:e:key; ARGV = base, key ids…
 */
export const INDEX_WORKSPACES = new Script(`
local base = ARGV[1]
for i = 2, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then redis.call('SADD', base .. ':w:' .. cjson.decode(raw).workspaceId, ARGV[i]) end
end
return 1
`);
