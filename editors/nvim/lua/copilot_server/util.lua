---@mod copilot_server.util Small helpers that hide the differences between Neovim 0.10 and 0.11+.

local M = {}

M.name = 'copilot_server'

local has_011 = vim.fn.has('nvim-0.11') == 1

--- The copilot_server client attached to a buffer (or any, without a buffer).
---@param bufnr integer|nil
---@return vim.lsp.Client|nil
function M.client(bufnr)
  local filter = { name = M.name }
  if bufnr then
    filter.bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  end
  return vim.lsp.get_clients(filter)[1]
end

---@return vim.lsp.Client[]
function M.clients()
  return vim.lsp.get_clients({ name = M.name })
end

--- client:request on 0.11+, client.request on 0.10.
function M.request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.request_sync(client, method, params, timeout_ms, bufnr)
  if has_011 then
    return client:request_sync(method, params, timeout_ms, bufnr)
  end
  return client.request_sync(method, params, timeout_ms, bufnr)
end

function M.cancel(client, request_id)
  if has_011 then
    return client:cancel_request(request_id)
  end
  return client.cancel_request(request_id)
end

--- Stops a buffer state's debounce timer and cancels its request in flight, if any
--- (`st.timer`, `st.request = { client_id, id }`): the suggestion and the next edit keep
--- the same shape of state.
function M.cancel_pending(st)
  if st.timer then
    st.timer:stop()
  end
  if st.request then
    local client = vim.lsp.get_client_by_id(st.request.client_id)
    if client then
      pcall(M.cancel, client, st.request.id)
    end
    st.request = nil
  end
end

function M.notify(client, method, params)
  if has_011 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.stop(client, force)
  if has_011 then
    return client:stop(force)
  end
  return client.stop(force)
end

--- Whether the server lists `command` in its executeCommandProvider.
function M.has_command(client, command)
  local provider = client.server_capabilities.executeCommandProvider
  local commands = type(provider) == 'table' and provider.commands or {}
  return vim.list_contains(commands, command)
end

--- Runs a server command (workspace/executeCommand); handler(err, result) is optional.
function M.execute(client, command, arguments, bufnr, handler)
  local params = { command = command, arguments = arguments }
  return M.request(client, 'workspace/executeCommand', params, function(err, result)
    if handler then
      handler(err, result)
    elseif err then
      M.warn(('%s failed: %s'):format(command, err.message or vim.inspect(err)))
    end
  end, bufnr)
end

--- LSP character offset (in the client's encoding) -> byte column in `line`.
---@param line string
---@param character integer
---@param encoding string
---@return integer
function M.byte_col(line, character, encoding)
  if encoding == 'utf-8' then
    return math.min(character, #line)
  end
  local ok, col
  if has_011 then
    ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, encoding == 'utf-16')
  end
  return ok and col or #line
end

--- Byte column in `line` -> LSP character offset in the client's encoding.
function M.char_col(line, byte_col, encoding)
  if encoding == 'utf-8' then
    return math.min(byte_col, #line)
  end
  local ok, col
  if has_011 then
    ok, col = pcall(vim.str_utfindex, line, encoding, byte_col, false)
  else
    local ok32, utf32, utf16 = pcall(vim.str_utfindex, line, byte_col)
    ok, col = ok32, encoding == 'utf-16' and utf16 or utf32
  end
  return ok and col or byte_col
end

--- The next word of a suggestion (with the whitespace before it and one punctuation mark
--- after it): what "accept word" inserts.
function M.next_word(text)
  return text:match('^%s*[%w_]+[^%w_%s]?') or text:match('^%s*[^%w_%s]+') or text:match('^%s+') or text
end

--- The rest of the current line of a suggestion: what "accept line" inserts. A suggestion
--- that starts with a line break gives that break and the line after it (else nothing).
function M.next_line(text)
  if text:sub(1, 1) == '\n' then
    return '\n' .. (text:sub(2):match('^[^\n]*') or '')
  end
  return text:match('^[^\n]*')
end

function M.warn(message)
  vim.notify('copilot-server: ' .. message, vim.log.levels.WARN)
end

function M.info(message)
  vim.notify('copilot-server: ' .. message, vim.log.levels.INFO)
end

return M
