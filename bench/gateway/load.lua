-- wrk script for bench/gateway: varied requests, and a count of every answer's status.
--
-- BENCH_LOAD picks the request: "preflight" (a CORS preflight from one of BENCH_ORIGINS
-- origins), "key" (a GET with an API key the gateway does not know) or "plain" (a GET, for
-- nginx). The path, the query values, the User-Agent and the key differ from request to request
-- (10,000 requests sent in turn), so the WAF's memo of values it has seen answers only for the
-- parts that repeat (Accept, the origins), as with real clients. done() prints the status mix and the socket errors;
-- bench/lib.sh fails the round when any answer is not BENCH_EXPECT_STATUS.
local load = os.getenv("BENCH_LOAD") or "plain"
local expect = tonumber(os.getenv("BENCH_EXPECT_STATUS") or "200")
local origins = {}
for o in string.gmatch(os.getenv("BENCH_ORIGINS") or "https://yourdomain.com", "[^,]+") do
    origins[#origins + 1] = o
end
local threads = {}
counts = {}

function setup(thread)
    thread:set("id", #threads + 1)
    threads[#threads + 1] = thread
end

-- The requests are made once, in init, and sent in turn: making them per request would load
-- wrk's core more than the servers'. 10,000 of them, each with values of its own, are far more
-- than the WAF memo's 256 slots, so the memo misses on the varied values.
local reqs = {}
local next_req = 0

local function make(i)
    local r = math.random(1, 2 ^ 30)
    local path = string.format("/items/%d?q=item%x&page=%d&n=%d", r % 100000, r, i % 97, i)
    local headers = {
        ["User-Agent"] = string.format("bench-client/%d.%d (run %x)", r % 7, i % 13, r),
        ["Accept"] = "application/json",
    }
    if load == "preflight" then
        headers["Origin"] = origins[(r % #origins) + 1]
        headers["Access-Control-Request-Method"] = "POST"
        return wrk.format("OPTIONS", path, headers)
    end
    if load == "key" then
        headers["X-API-Key"] = string.format("sk_unknown_%08x%08x%08x", r, i, math.random(1, 2 ^ 30))
    end
    return wrk.format("GET", path, headers)
end

function init(args)
    math.randomseed(1000 + (id or 0))
    for i = 1, 10000 do
        reqs[i] = make(i)
    end
end

function request()
    next_req = next_req % #reqs + 1
    return reqs[next_req]
end

function response(status, headers, body)
    counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
    local total, statuses, unexpected = {}, {}, 0
    for _, t in ipairs(threads) do
        for s, c in pairs(t:get("counts")) do
            total[s] = (total[s] or 0) + c
        end
    end
    for s, c in pairs(total) do
        statuses[#statuses + 1] = string.format("%d:%d", s, c)
        if s ~= expect then
            unexpected = unexpected + c
        end
    end
    table.sort(statuses)
    local e = summary.errors
    io.write(string.format("bench-statuses %s\n", table.concat(statuses, " ")))
    io.write(string.format("bench-unexpected %d\n", unexpected))
    io.write(string.format("bench-socket-errors %d\n", e.connect + e.read + e.write + e.timeout))
end
