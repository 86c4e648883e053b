-- wrk script: refresh token grants, one client per wrk thread (run with -t N -c N), each presenting the refresh token
-- the previous response returned; an answer without a new one is unexpected.
-- Usage: wrk -s refresh_grant.lua URL/token -- clients.txt ("<client id> <token>")
dofile(debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "answers.lua")

local client_id, token

function init(args)
    local line_number = 0
    for line in io.lines(args[1]) do
        line_number = line_number + 1
        if line_number == number then client_id, token = line:match("^(%S+)%s+(%S+)$") end
    end
end

function request()
    return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" },
        "grant_type=refresh_token&client_id=" .. client_id .. "&refresh_token=" .. token)
end

function response(status, headers, body)
    local new_token = body:match('"refresh_token":"([^"]+)"')
    if status == 200 and new_token then token = new_token else unexpected(status, body) end
end
