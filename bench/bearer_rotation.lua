-- wrk script: GET a protected URL with many users' tokens in turn, every answer checked (HTTP 200 and a JSON body
-- holding `expect`, e.g. `"sub":` for /api/me or `"todos":` for /api/todos).
-- Usage: wrk -s bearer_rotation.lua URL -- <tokens file> <expect>
--   tokens file: one access token per line; each thread starts at a random one and takes them in turn.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

local tokens = {}
local counter = 0
local expect = '"sub":'
errors = 0
bad = nil

function init(args)
    for line in io.lines(args[1]) do
        if line ~= "" then tokens[#tokens + 1] = line end
    end
    expect = args[2] or expect
    counter = math.random(#tokens)
end

function request()
    counter = counter % #tokens + 1
    return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[counter] }, nil)
end

function response(status, headers, body)
    if status ~= 200 or not body:find(expect, 1, true) then
        errors = errors + 1
        if bad == nil then bad = status .. " " .. body:sub(1, 300) end
    end
end

function done(summary, latency, requests)
    local total = 0
    local example = nil
    for _, thread in ipairs(threads) do
        total = total + thread:get("errors")
        example = example or thread:get("bad")
    end
    io.write(string.format("Unexpected answers: %d\n", total))
    if example then io.write("First unexpected answer: " .. example .. "\n") end
end
