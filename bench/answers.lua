-- Shared by make bench's wrk scripts, loaded by each with dofile: every answer is checked, and a run ends by printing
-- how many were not what the script expected ("Unexpected answers: N", which the benchmark scripts fail on) and the
-- first of them. A script calls unexpected(status, body) for such an answer; each wrk thread knows its `number`.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("number", #threads)
end

errors = 0
bad = nil

function unexpected(status, body)
    errors = errors + 1
    if bad == nil then bad = status .. " " .. body:sub(1, 300) end
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
