-- wrk script: POST tools/call list-todos to /mcp, cycling through MCP sessions.
-- Usage: wrk -s mcp_tool_call.lua URL -- sessions.txt   (each line: "<access token> <session id>")
local sessions = {}
local counter = 0

function init(args)
    for line in io.lines(args[1]) do
        local token, session = line:match("^(%S+)%s+(%S+)$")
        if token then sessions[#sessions + 1] = { token = token, session = session } end
    end
    counter = math.random(#sessions)
end

local body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list-todos","arguments":{}}}'

function request()
    counter = counter % #sessions + 1
    local entry = sessions[counter]
    return wrk.format("POST", nil, {
        ["Authorization"] = "Bearer " .. entry.token,
        ["Mcp-Session-Id"] = entry.session,
        ["Mcp-Protocol-Version"] = "2025-11-25",
        ["Content-Type"] = "application/json",
        ["Accept"] = "application/json, text/event-stream",
    }, body)
end
