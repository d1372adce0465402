-- Included by the status scripts. KEYS[1] = a record hash with a 'status' field; ARGV[first..] =
-- the statuses it may move from. Answers its current status when that is one of them, false when
-- it is not, nil when there is no record.
local function allowed_status(first)
  local cur = redis.call('HGET', KEYS[1], 'status')
  if not cur then return nil end
  for i = first, #ARGV do
    if cur == ARGV[i] then return cur end
  end
  return false
end
