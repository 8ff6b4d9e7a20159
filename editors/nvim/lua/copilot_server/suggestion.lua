---@mod copilot_server.suggestion Ghost text: request, render, type-through, accept, cycle.
---
--- One state per attached buffer. A suggestion is an item anchored at a buffer position;
--- while the text typed since that anchor is a prefix of the item, the rest stays on
--- screen (no new request), so typing along a suggestion costs no model time.

local api = vim.api
local buffers = require('copilot_server.buffers')
local config = require('copilot_server.config')
local keys = require('copilot_server.keys')
local util = require('copilot_server.util')

local M = {}

local ns = api.nvim_create_namespace('copilot_server.suggestion')
M.ns = ns

local INVOKED, AUTOMATIC = 1, 2
M.INVOKED, M.AUTOMATIC = INVOKED, AUTOMATIC

local REQUEST_CANCELLED = -32800

--- Completions on/off (`:CopilotServer enable|disable`); buffers stay attached either way.
M.enabled = true

---@class copilot_server.Item
---@field text string
---@field row integer 0-based row of the range start
---@field col integer byte column of the range start
---@field command table|nil

---@class copilot_server.State
---@field bufnr integer
---@field items copilot_server.Item[]|nil
---@field index integer
---@field client_id integer|nil
---@field suffix string text after the cursor on its line when the request was made
---@field lines_below integer lines below the cursor's line when the request was made
---@field tick integer
---@field row integer
---@field col integer
---@field timer uv.uv_timer_t|nil
---@field request {client_id: integer, id: integer}|nil
---@field fallbacks table<string, table|false> buffer-local mappings ours replaced at attach
---@field asked_more boolean the server was asked for alternatives of the items shown

---@type table<integer, copilot_server.State>
local states = {}

local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function in_insert_mode()
  return api.nvim_get_mode().mode:sub(1, 1) == 'i'
end

local function hide(st)
  if api.nvim_buf_is_valid(st.bufnr) then
    api.nvim_buf_clear_namespace(st.bufnr, ns, 0, -1)
  end
end

--- Drops the shown suggestion and any pending request for the buffer.
function M.clear(bufnr)
  local st = states[bufnr or api.nvim_get_current_buf()]
  if not st then
    return
  end
  util.cancel_pending(st)
  hide(st)
  st.items = nil
  st.asked_more = false
end

--- The insert-completion popup menu covers the ghost text (and owns Tab) while it is open.
local function popup_hides()
  return config.options.suggestion.hide_during_completion and vim.fn.pumvisible() == 1
end

--- The part of the current item still to be inserted at the cursor, or nil when the
--- buffer no longer agrees with it (the user typed something else, moved, deleted lines).
---@param st copilot_server.State
---@return string|nil
local function remaining(st)
  local item = st.items and st.items[st.index]
  if not item or api.nvim_get_current_buf() ~= st.bufnr then
    return nil
  end
  local row, col = cursor()
  if row < item.row or (row == item.row and col < item.col) then
    return nil
  end
  if api.nvim_buf_line_count(st.bufnr) - row - 1 ~= st.lines_below then
    return nil
  end
  local line = api.nvim_buf_get_lines(st.bufnr, row, row + 1, false)[1] or ''
  if line:sub(col + 1) ~= st.suffix then
    return nil
  end
  local typed = table.concat(api.nvim_buf_get_text(st.bufnr, item.row, item.col, row, col, {}), '\n')
  if item.text:sub(1, #typed) ~= typed then
    return nil
  end
  local rest = item.text:sub(#typed + 1)
  return rest ~= '' and rest or nil
end

local function display(s, tab)
  return (s:gsub('\t', tab))
end

---@param st copilot_server.State
---@param rest string
local function render(st, rest)
  hide(st)
  local row, col = cursor()
  local tab = string.rep(' ', vim.bo[st.bufnr].tabstop)
  local lines = vim.split(rest, '\n', { plain = true })
  local hl = 'CopilotServerSuggestion'
  local chunks = {}
  for i, line in ipairs(lines) do
    chunks[i] = { { display(line, tab), hl } }
  end
  if #st.items > 1 then
    table.insert(chunks[#chunks], { (' (%d/%d)'):format(st.index, #st.items), 'CopilotServerCount' })
  end
  local opts = { virt_text = chunks[1], virt_text_pos = 'inline', hl_mode = 'combine' }
  if #chunks > 1 then
    opts.virt_lines = { unpack(chunks, 2) }
  end
  api.nvim_buf_set_extmark(st.bufnr, ns, row, col, opts)
end

--- Shows the current item if it still fits the buffer (hidden under the popup menu), else
--- clears. Returns whether it still fits.
local function refresh(st)
  local rest = remaining(st)
  if rest then
    if popup_hides() then
      hide(st)
    else
      render(st, rest)
    end
    return true
  end
  M.clear(st.bufnr)
  return false
end

---@return copilot_server.Item[]
local function parse(result, client, bufnr, row, col)
  local raw = result and (result.items or result) or {}
  local items = {}
  for _, it in ipairs(raw) do
    local text = it.insertText
    if type(text) == 'table' then -- a StringValue snippet: show it as plain text
      text = text.value
    end
    if type(text) == 'string' and text ~= '' then
      local srow, scol = row, col
      if it.range then
        srow = it.range.start.line
        local line = api.nvim_buf_get_lines(bufnr, srow, srow + 1, false)[1] or ''
        scol = util.byte_col(line, it.range.start.character, client.offset_encoding)
      end
      -- The range must start at or before the cursor (it ends at the cursor by contract).
      if srow < row or (srow == row and scol <= col) then
        items[#items + 1] = { text = text, row = srow, col = scol, command = it.command }
      end
    end
  end
  return items
end

--- Cycling asked the server for alternatives while one item was shown: that item stays
--- first (or the new one that extends it: typing got a block's first line early, the
--- explicit request the whole block), then the others.
local function merge(st, items)
  local shown = remaining(st)
  if not shown then
    return items
  end
  local first, others = st.items[st.index], {}
  local extended = false
  for _, item in ipairs(items) do
    if not extended and vim.startswith(item.text, shown) then
      first, extended = item, true
    elseif vim.trim(item.text) ~= vim.trim(shown) then
      others[#others + 1] = item
    end
  end
  return { first, unpack(others) }
end

--- Sends textDocument/inlineCompletion for the cursor position now.
---@param bufnr integer|nil
---@param kind integer|nil 1 = Invoked (a key), 2 = Automatic (typing)
---@param cycle integer|nil cycling: keep the item shown first and move by this much
function M.request(bufnr, kind, cycle)
  bufnr = bufnr or api.nvim_get_current_buf()
  local client = util.client(bufnr)
  local st = states[bufnr]
  if not (client and st and M.enabled and buffers.enabled(bufnr)) or api.nvim_get_current_buf() ~= bufnr then
    return
  end
  util.cancel_pending(st)
  local row, col = cursor()
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = util.char_col(line, col, client.offset_encoding) },
    context = { triggerKind = kind or AUTOMATIC },
  }
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local id
  local ok, request_id = util.request(client, 'textDocument/inlineCompletion', params, function(err, result)
    if st.request and st.request.id == id then
      st.request = nil
    end
    if err then
      if err.code ~= REQUEST_CANCELLED then
        vim.lsp.log.warn('copilot_server: inlineCompletion failed', err)
      end
      return
    end
    -- Only show what was computed for exactly this text and cursor.
    if api.nvim_get_current_buf() ~= bufnr or not in_insert_mode() then
      return
    end
    local r, c = cursor()
    if api.nvim_buf_get_changedtick(bufnr) ~= tick or r ~= row or c ~= col then
      return
    end
    local items = parse(result, client, bufnr, row, col)
    if cycle then
      items = merge(st, items)
    end
    if #items == 0 then
      return
    end
    st.items, st.index, st.client_id = items, 1, client.id
    st.suffix = line:sub(col + 1)
    st.lines_below = api.nvim_buf_line_count(bufnr) - row - 1
    st.asked_more = kind == INVOKED -- an explicit request already brought the alternatives
    if cycle then
      st.index = (cycle % #items) + 1
    end
    refresh(st)
  end, bufnr)
  if ok and request_id then
    id = request_id
    st.request = { client_id = client.id, id = request_id }
  end
end

--- Requests after `debounce_ms` of quiet, if automatic suggestions are on.
function M.schedule(bufnr)
  local opts = config.options.suggestion
  local st = states[bufnr]
  if not (st and M.enabled and opts.auto_trigger and buffers.enabled(bufnr)) then
    return
  end
  st.timer = st.timer or vim.uv.new_timer()
  st.timer:stop()
  st.timer:start(
    opts.debounce_ms,
    0,
    vim.schedule_wrap(function()
      if states[bufnr] == st and api.nvim_get_current_buf() == bufnr and in_insert_mode() then
        M.request(bufnr, AUTOMATIC)
      end
    end)
  )
end

--- TextChangedI / CursorMovedI: keep a suggestion the user is typing along, else start over.
local function on_change(bufnr)
  local st = states[bufnr]
  if not st or api.nvim_get_current_buf() ~= bufnr then
    return
  end
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local row, col = cursor()
  -- Both events fire for one keystroke; handle each change once.
  if tick == st.tick and row == st.row and col == st.col then
    return
  end
  local text_changed = tick ~= st.tick
  st.tick, st.row, st.col = tick, row, col
  if text_changed and st.items and refresh(st) then
    return
  end
  M.clear(bufnr)
  M.schedule(bufnr)
end

--- Whether a suggestion is on screen in the buffer.
function M.visible(bufnr)
  local st = states[bufnr or api.nvim_get_current_buf()]
  return st ~= nil and remaining(st) ~= nil and not popup_hides()
end

--- The text a suggestion would insert at the cursor, or nil (for statuslines and tests).
function M.current_text(bufnr)
  local st = states[bufnr or api.nvim_get_current_buf()]
  return st and remaining(st) or nil
end

--- Closes the current undo step, as <C-g>u does: an accept is its own step, so `u`
--- takes back the suggestion and not the newline and indent typed before it.
local function break_undo()
  vim.cmd('let &l:undolevels = &l:undolevels')
end

local function insert_at_cursor(text)
  local row, col = cursor()
  local lines = vim.split(text, '\n', { plain = true })
  break_undo()
  api.nvim_buf_set_text(0, row, col, row, col, lines)
  local last = #lines
  api.nvim_win_set_cursor(0, { row + last, (last == 1 and col or 0) + #lines[last] })
  break_undo() -- and what is typed next is a step of its own
end

--- Inserts all of the suggestion ('all'), its next word or its next line.
--- Runs the item's command once the whole suggestion is in. Returns false when none is shown.
---@param what 'all'|'word'|'line'|nil
---@return boolean
function M.accept(what)
  local bufnr = api.nvim_get_current_buf()
  local st = states[bufnr]
  local rest = st and remaining(st)
  if not rest or popup_hides() then
    return false
  end
  local item = st.items[st.index]
  local part = rest
  if what == 'word' then
    part = util.next_word(rest)
  elseif what == 'line' then
    part = util.next_line(rest)
  end
  local whole = part == rest
  if whole then
    M.clear(bufnr)
  end
  insert_at_cursor(part)
  if whole and item.command then
    local client = vim.lsp.get_client_by_id(st.client_id)
    if client then
      util.execute(client, item.command.command, item.command.arguments, bufnr)
    end
  end
  return true
end

--- Hides the suggestion until the next edit. Returns false when none was shown.
function M.dismiss()
  local bufnr = api.nvim_get_current_buf()
  local shown = M.visible(bufnr)
  M.clear(bufnr)
  return shown
end

--- Shows the next (delta 1) or previous (-1) item; asks the server when none is shown,
--- and for alternatives when only the one from typing is (the server makes them only
--- for an explicit request).
function M.cycle(delta)
  local bufnr = api.nvim_get_current_buf()
  local st = states[bufnr]
  if not st then
    return false
  end
  if not (st.items and remaining(st)) then
    M.request(bufnr, INVOKED)
    return true
  end
  if #st.items == 1 and not st.asked_more then
    st.asked_more = true
    M.request(bufnr, INVOKED, delta)
    return true
  end
  if #st.items > 1 then
    st.index = (st.index - 1 + delta) % #st.items + 1
    refresh(st)
  end
  return true
end

local function map_keys(st)
  local keymap = config.options.suggestion.keymap or {}
  local actions = {
    accept = { function() return M.accept('all') end, 'accept suggestion', true },
    accept_word = { function() return M.accept('word') end, 'accept next word', true },
    accept_line = { function() return M.accept('line') end, 'accept next line', true },
    dismiss = { M.dismiss, 'dismiss suggestion', true },
    next = { function() return M.cycle(1) end, 'next suggestion', false },
    prev = { function() return M.cycle(-1) end, 'previous suggestion', false },
    request = { function() M.request(nil, INVOKED) return true end, 'request suggestion', false },
  }
  for name, spec in pairs(actions) do
    local lhs = keymap[name]
    if lhs then
      local fn, desc, with_fallback = spec[1], spec[2], spec[3]
      if with_fallback and st.fallbacks[lhs] == nil then
        st.fallbacks[lhs] = keys.buffer_mapping(st.bufnr, lhs) or false
      end
      vim.keymap.set('i', lhs, function()
        if not fn() and with_fallback then
          -- Whatever the key means now: a mapping made after attach counts.
          keys.fallback(lhs, st.fallbacks[lhs] or nil)
        end
      end, { buffer = st.bufnr, silent = true, desc = keys.PREFIX .. ' ' .. desc })
    end
  end
end

--- Starts ghost text for a buffer (called on LspAttach of our client). Idempotent.
function M.attach(bufnr)
  if states[bufnr] then
    return
  end
  local st = {
    bufnr = bufnr,
    index = 1,
    tick = -1,
    row = -1,
    col = -1,
    fallbacks = {},
    suffix = '',
    lines_below = 0,
    asked_more = false,
  }
  states[bufnr] = st
  map_keys(st)
  local group = api.nvim_create_augroup('copilot_server.suggestion.' .. bufnr, { clear = true })
  api.nvim_create_autocmd({ 'TextChangedI', 'TextChangedP', 'CursorMovedI' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      on_change(bufnr)
    end,
  })
  api.nvim_create_autocmd('InsertEnter', {
    group = group,
    buffer = bufnr,
    callback = function()
      st.tick = api.nvim_buf_get_changedtick(bufnr)
      st.row, st.col = cursor()
      M.schedule(bufnr)
    end,
  })
  -- The popup menu opens over the ghost text: hide it; show it again when the menu closes
  -- and the text still agrees (CompleteDone comes before the completed text is in).
  api.nvim_create_autocmd('CompleteChanged', {
    group = group,
    buffer = bufnr,
    callback = function()
      if st.items and popup_hides() then
        hide(st)
      end
    end,
  })
  api.nvim_create_autocmd('CompleteDone', {
    group = group,
    buffer = bufnr,
    callback = vim.schedule_wrap(function()
      if states[bufnr] == st and st.items and in_insert_mode() then
        refresh(st)
      end
    end),
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  api.nvim_create_autocmd('ModeChanged', {
    group = group,
    buffer = bufnr,
    callback = function()
      if not in_insert_mode() then
        M.clear(bufnr)
      end
    end,
  })
  api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.detach(bufnr)
    end,
  })
end

function M.detach(bufnr)
  local st = states[bufnr]
  if not st then
    return
  end
  M.clear(bufnr)
  if st.timer and not st.timer:is_closing() then
    st.timer:close()
  end
  states[bufnr] = nil
  pcall(api.nvim_del_augroup_by_name, 'copilot_server.suggestion.' .. bufnr)
end

function M.attached(bufnr)
  return states[bufnr or api.nvim_get_current_buf()] ~= nil
end

return M
