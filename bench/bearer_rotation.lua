-- wrk script: GET a URL with many users' tokens in turn (or with none), every answer checked: HTTP 200 and a body
-- holding `expect`, e.g. `"sub":` for /api/me, `"todos":` for /api/todos, `"status":"ok"` for /api/health.
-- Usage: wrk -s bearer_rotation.lua URL -- <tokens file> <expect>
--   tokens file: one access token per line; each thread starts at a random one and takes them in turn. An empty file
--   (/dev/null) sends no Authorization header.
dofile(debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "answers.lua")

local tokens = {}
local counter = 0
local expect = '"sub":'

function init(args)
    for line in io.lines(args[1]) do
        if line ~= "" then tokens[#tokens + 1] = line end
    end
    expect = args[2] or expect
    counter = #tokens > 0 and math.random(#tokens) or 0
end

function request()
    if #tokens == 0 then return wrk.format("GET", nil, {}, nil) end
    counter = counter % #tokens + 1
    return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[counter] }, nil)
end

function response(status, headers, body)
    if status ~= 200 or not body:find(expect, 1, true) then unexpected(status, body) end
end
