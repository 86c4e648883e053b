-- wrk script: POST tools/call list-todos to an MCP endpoint, a distinct JSON-RPC id on every request, every answer
-- checked (HTTP 200, a JSON-RPC result with the todos, not a tool error).
-- Usage: wrk -s mcp_tool_call.lua URL -- <data file> <mode>
--   data file: one line per user, "<access token> <session id>" (session mode) or "<access token> -" (stateless)
--   mode: "session" (MCP 2025-11-25, Mcp-Session-Id) or "stateless" (MCP 2026-07-28: _meta and the standard headers)
dofile(debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "answers.lua")

local entries = {}
local counter = 0
local sent = 0
local mode = "session"

function init(args)
    mode = args[2] or "session"
    for line in io.lines(args[1]) do
        local token, session = line:match("^(%S+)%s+(%S+)$")
        if token then entries[#entries + 1] = { token = token, session = session } end
    end
    counter = math.random(#entries)
    sent = number * 100000000
end

local meta = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    .. '"io.modelcontextprotocol/clientCapabilities":{},'
    .. '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"}}'

function request()
    counter = counter % #entries + 1
    sent = sent + 1
    local entry = entries[counter]
    local headers = {
        ["Authorization"] = "Bearer " .. entry.token,
        ["Content-Type"] = "application/json",
        ["Accept"] = "application/json, text/event-stream",
    }
    local params
    if mode == "stateless" then
        headers["MCP-Protocol-Version"] = "2026-07-28"
        headers["Mcp-Method"] = "tools/call"
        headers["Mcp-Name"] = "list-todos"
        params = '{"name":"list-todos","arguments":{},' .. meta .. '}'
    else
        headers["MCP-Protocol-Version"] = "2025-11-25"
        headers["Mcp-Session-Id"] = entry.session
        params = '{"name":"list-todos","arguments":{}}'
    end
    local body = '{"jsonrpc":"2.0","id":' .. sent .. ',"method":"tools/call","params":' .. params .. '}'
    return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
    if status ~= 200 or not body:find('todos', 1, true) or body:find('"isError":true', 1, true)
        or not body:find('"id":', 1, true) then
        unexpected(status, body)
    end
end
