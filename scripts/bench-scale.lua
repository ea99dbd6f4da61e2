-- wrk script of scripts/bench-scale.sh: every request picks something at random out of
-- a pool file the shell wrote (BENCH_SCALE_FILE). BENCH_SCALE_MODE selects the request:
--
--   token   lines "USERNAME NAMESPACE REPOSITORIES": GET /v2/token for a random user of
--           the pool, with its Basic header (USERNAME:BENCH_SCALE_PASSWORD, base64, built
--           once per user in init), scope repository:NAMESPACE/app<k>:pull,push with k
--           random below REPOSITORIES (app0 .. are the loaded repositories' names)
--   anon    lines "NAMESPACE/REPOSITORY": GET /v2/token without credentials, pull
--   page    no file: BENCH_SCALE_PATH .. <random page 1 .. BENCH_SCALE_PAGES>
--   search  lines "TERM": BENCH_SCALE_PATH .. TERM
--
-- Other headers (the admin's token, a session cookie) come from -H on the command line.
-- BENCH_SCALE_SERVICE is the token request's service (the registry's hostname).

local mode = assert(os.getenv("BENCH_SCALE_MODE"), "BENCH_SCALE_MODE is not set")
local service = os.getenv("BENCH_SCALE_SERVICE") or ""
local path_prefix = os.getenv("BENCH_SCALE_PATH") or ""
local pages = tonumber(os.getenv("BENCH_SCALE_PAGES") or "1")

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1)
      .. (b and b64chars:sub(c3 + 1, c3 + 1) or "=")
      .. (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

local function lines(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then
      out[#out + 1] = line
    end
  end
  assert(#out > 0, path .. " is empty")
  return out
end

local pool = {}

function init(args)
  -- A seed of its own per thread (each has its own Lua state).
  local f = assert(io.open("/proc/sys/kernel/random/uuid"))
  local uuid = f:read("*l")
  f:close()
  math.randomseed(tonumber(uuid:gsub("-", ""):sub(1, 12), 16))
  local file = os.getenv("BENCH_SCALE_FILE")
  if mode == "token" then
    local password = assert(os.getenv("BENCH_SCALE_PASSWORD"), "BENCH_SCALE_PASSWORD is not set")
    for _, line in ipairs(lines(file)) do
      local user, namespace, repositories = line:match("^(%S+) (%S+) (%d+)$")
      assert(user, "bad pool line: " .. line)
      pool[#pool + 1] = {
        headers = { Authorization = "Basic " .. base64(user .. ":" .. password) },
        prefix = "/v2/token?service=" .. service .. "&scope=repository:" .. namespace .. "/app",
        repositories = tonumber(repositories),
      }
    end
  elseif mode == "anon" then
    for _, line in ipairs(lines(file)) do
      pool[#pool + 1] = "/v2/token?service=" .. service .. "&scope=repository:" .. line .. ":pull"
    end
  elseif mode == "search" then
    for _, line in ipairs(lines(file)) do
      pool[#pool + 1] = path_prefix .. line
    end
  else
    assert(mode == "page", "unknown BENCH_SCALE_MODE " .. mode)
  end
end

function request()
  if mode == "token" then
    local u = pool[math.random(#pool)]
    local k = u.repositories > 0 and math.random(0, u.repositories - 1) or 0
    -- wrk.format adds Host (and a nil Content-Length) to the table: the same each time.
    return wrk.format("GET", u.prefix .. k .. ":pull,push", u.headers)
  elseif mode == "page" then
    return wrk.format("GET", path_prefix .. math.random(1, pages))
  else
    return wrk.format("GET", pool[math.random(#pool)])
  end
end
