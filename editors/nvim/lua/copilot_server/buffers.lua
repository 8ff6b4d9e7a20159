---@mod copilot_server.buffers Which buffers get the server and its suggestions.
---
--- At attach: a real file (buftype '', a local path), a filetype that is wanted, and not
--- larger than `max_file_size`. At run time `:CopilotServer enable|disable buffer` and
--- `... filetype [{ft}]` switch suggestions on or off; a buffer's switch wins over its
--- filetype's, and both win over the configured filetypes.

local api = vim.api
local config = require('copilot_server.config')

local M = {}

--- Run-time switches per filetype (`:CopilotServer enable|disable filetype`).
---@type table<string, boolean>
M.filetypes = {}

--- Buffers not attached because of their size: bufnr -> bytes (for `:CopilotServer status`).
---@type table<integer, integer>
M.too_large = {}

local VAR = 'copilot_server_enabled' -- vim.b[bufnr][VAR]: the buffer's run-time switch

--- The buffer's size in bytes (what would be synced to the server).
function M.size(bufnr)
  local ok, bytes = pcall(api.nvim_buf_get_offset, bufnr, api.nvim_buf_line_count(bufnr))
  return ok and bytes or 0
end

function M.human_size(bytes)
  if bytes >= 1024 * 1024 then
    return ('%.1f MB'):format(bytes / (1024 * 1024))
  end
  return ('%d KB'):format(math.ceil(bytes / 1024))
end

--- Whether `ft` gets suggestions by configuration and run-time switches.
function M.filetype_wanted(ft)
  if M.filetypes[ft] ~= nil then
    return M.filetypes[ft]
  end
  local opts = config.options
  local only = opts.filetypes
  if type(only) == 'table' and not vim.list_contains(only, '*') and not vim.list_contains(only, ft) then
    return false
  end
  return not vim.list_contains(opts.exclude_filetypes or {}, ft)
end

local function too_large(bufnr)
  local limit = config.options.max_file_size
  local bytes = M.size(bufnr)
  if limit and limit > 0 and bytes > limit then
    return ('%s is larger than max_file_size (%s)'):format(M.human_size(bytes), M.human_size(limit))
  end
end

--- Whether the server should attach to the buffer; when not, the reason.
---@return boolean, string|nil
function M.attachable(bufnr)
  if not (api.nvim_buf_is_valid(bufnr) and api.nvim_buf_is_loaded(bufnr)) then
    return false, 'not loaded'
  end
  local bo = vim.bo[bufnr]
  if bo.buftype ~= '' then
    return false, ('not a file (buftype=%s)'):format(bo.buftype)
  end
  local name = api.nvim_buf_get_name(bufnr)
  if name == '' or name:match('^%a[%w+.-]*://') then
    return false, 'not a file on disk'
  end
  if bo.filetype == '' then
    return false, 'no filetype'
  end
  local size_problem = too_large(bufnr)
  if size_problem then
    M.too_large[bufnr] = M.size(bufnr)
    return false, size_problem
  end
  M.too_large[bufnr] = nil
  local switch = vim.b[bufnr][VAR]
  if switch == nil and not M.filetype_wanted(bo.filetype) then
    return false, ('filetype %s is off (filetypes / exclude_filetypes)'):format(bo.filetype)
  end
  return true, nil
end

--- Whether an attached buffer gets suggestions now; when not, the reason.
---@return boolean, string|nil
function M.enabled(bufnr)
  local size_problem = too_large(bufnr)
  if size_problem then
    return false, size_problem
  end
  local switch = vim.b[bufnr][VAR]
  if switch ~= nil then
    return switch, (not switch) and 'off for this buffer' or nil
  end
  local ft = vim.bo[bufnr].filetype
  if not M.filetype_wanted(ft) then
    return false, ('off for filetype %s'):format(ft)
  end
  return true, nil
end

--- `:CopilotServer enable|disable buffer`.
function M.set_buffer(bufnr, on)
  vim.b[bufnr][VAR] = on
end

--- `:CopilotServer enable|disable filetype {ft}`.
function M.set_filetype(ft, on)
  M.filetypes[ft] = on
end

return M
