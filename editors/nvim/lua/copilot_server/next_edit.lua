---@mod copilot_server.next_edit Next edit suggestions: the edit after the one just made.
---
--- After leaving insert mode or a normal-mode change, the server is asked
--- (`textDocument/copilotInlineEdit`, the request GitHub's copilot-language-server
--- answers) for the next edit anywhere in the buffer. It is shown as a diff preview: the
--- text it replaces highlighted and struck through, the new text beside it (or as lines
--- below it). One key (default <Tab> in normal mode) jumps to the edit, and pressed there
--- applies it in one undo step; <Esc> or typing dismisses it.

local api = vim.api
local config = require('copilot_server.config')
local util = require('copilot_server.util')

local M = {}

local ns = api.nvim_create_namespace('copilot_server.next_edit')
M.ns = ns

local METHOD = 'textDocument/copilotInlineEdit'

---@class copilot_server.NextEdit
---@field range table LSP range
---@field text string
---@field version integer
---@field command table|nil
---@field client_id integer
---@field srow integer 0-based
---@field scol integer byte column
---@field erow integer
---@field ecol integer

---@class copilot_server.NextEditState
---@field bufnr integer
---@field edit copilot_server.NextEdit|nil
---@field request {client_id: integer, id: integer}|nil
---@field timer uv.uv_timer_t|nil

---@type table<integer, copilot_server.NextEditState>
local states = {}

--- The version the client sent with its last didChange (what the server's edits carry).
local function buf_version(bufnr)
  local versions = vim.lsp.util.buf_versions
  return (versions and versions[bufnr]) or vim.b[bufnr].changedtick
end

local function options()
  return config.options.next_edit or {}
end

--- Drops the shown edit (and a pending request) of a buffer.
function M.clear(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local st = states[bufnr]
  if not st then
    return false
  end
  util.cancel_pending(st)
  local shown = st.edit ~= nil
  st.edit = nil
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  end
  return shown
end

--- The edit shown in a buffer (nil when none, or when the buffer changed since).
function M.current(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local st = states[bufnr]
  local edit = st and st.edit
  if edit and edit.version ~= buf_version(bufnr) then
    M.clear(bufnr)
    return nil
  end
  return edit
end

local function line_text(bufnr, row)
  return api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
end

local function render(st)
  local edit = st.edit
  local bufnr = st.bufnr
  api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  if edit.srow ~= edit.erow or edit.scol ~= edit.ecol then
    for _, group in ipairs({ 'CopilotServerNextEditDelete', 'CopilotServerNextEditStrike' }) do
      api.nvim_buf_set_extmark(bufnr, ns, edit.srow, edit.scol, {
        end_row = edit.erow,
        end_col = edit.ecol,
        hl_group = group,
        strict = false,
      })
    end
  end
  local lines = vim.split(edit.text, '\n', { plain = true })
  local mark = { virt_text_pos = 'inline', strict = false }
  if lines[1] ~= '' then
    mark.virt_text = { { lines[1], 'CopilotServerNextEditAdd' } }
  end
  if #lines > 1 then
    mark.virt_lines = {}
    for i = 2, #lines do
      mark.virt_lines[#mark.virt_lines + 1] = { { lines[i], 'CopilotServerNextEditAdd' } }
    end
  end
  if mark.virt_text or mark.virt_lines then
    api.nvim_buf_set_extmark(bufnr, ns, edit.erow, edit.ecol, mark)
  end
  -- Where the edit is, for an edit off the screen: a sign on its first line.
  api.nvim_buf_set_extmark(bufnr, ns, edit.srow, 0, {
    sign_text = options().sign or '»',
    sign_hl_group = 'CopilotServerNextEditSign',
    strict = false,
  })
end

local function on_result(bufnr, version, err, result, ctx)
  local st = states[bufnr]
  if not st or not api.nvim_buf_is_valid(bufnr) then
    return
  end
  st.request = nil
  if err or type(result) ~= 'table' or type(result.edits) ~= 'table' then
    return
  end
  local item = result.edits[1]
  if not item or buf_version(bufnr) ~= version or api.nvim_get_mode().mode:sub(1, 1) == 'i' then
    return -- the buffer moved on, or the user is typing: an edit now would be in the way
  end
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return
  end
  local enc = client.offset_encoding or 'utf-16'
  local s, e = item.range.start, item.range['end']
  local last = api.nvim_buf_line_count(bufnr) - 1
  local srow, erow = math.min(s.line, last), math.min(e.line, last)
  st.edit = {
    range = item.range,
    text = item.text or item.newText or '',
    version = version,
    command = item.command,
    client_id = ctx.client_id,
    srow = srow,
    scol = util.byte_col(line_text(bufnr, srow), s.character, enc),
    erow = erow,
    ecol = util.byte_col(line_text(bufnr, erow), e.character, enc),
  }
  render(st)
  api.nvim_exec_autocmds('User', { pattern = 'CopilotServerNextEdit', modeline = false })
end

--- Asks the server for the next edit at the cursor (replaces a shown one).
function M.request(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local st = states[bufnr]
  local client = util.client(bufnr)
  if not st or not client or api.nvim_get_current_buf() ~= bufnr then
    return
  end
  M.clear(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding or 'utf-16')
  local version = buf_version(bufnr)
  params.textDocument.version = version
  local ok, id = util.request(client, METHOD, params, function(err, result, ctx)
    on_result(bufnr, version, err, result, ctx)
  end, bufnr)
  if ok and id then
    st.request = { client_id = client.id, id = id }
  end
end

local function request_soon(bufnr)
  local st = states[bufnr]
  if not st or options().auto_trigger == false then
    return
  end
  st.timer = st.timer or vim.uv.new_timer()
  st.timer:stop()
  st.timer:start(options().debounce_ms or 100, 0, vim.schedule_wrap(function()
    if api.nvim_buf_is_valid(bufnr) then
      M.request(bufnr)
    end
  end))
end

--- Jumps to the shown edit, or applies it when the cursor is already at its start.
--- Returns false when no edit is shown (the key then does what it did before).
function M.jump_or_apply(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local edit = M.current(bufnr)
  if not edit then
    return false
  end
  local pos = api.nvim_win_get_cursor(0)
  if pos[1] - 1 ~= edit.srow or pos[2] ~= edit.scol then
    vim.cmd("normal! m'") -- the jumplist gets where we came from
    api.nvim_win_set_cursor(0, { edit.srow + 1, edit.scol })
    return true
  end
  M.apply(bufnr)
  return true
end

--- Applies the shown edit in one undo step and tells the server (the edit's command).
function M.apply(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local edit = M.current(bufnr)
  if not edit then
    return false
  end
  local client = vim.lsp.get_client_by_id(edit.client_id)
  M.clear(bufnr)
  -- One nvim_buf_set_text: one undo step.
  local lines = vim.split(edit.text, '\n', { plain = true })
  api.nvim_buf_set_text(bufnr, edit.srow, edit.scol, edit.erow, edit.ecol, lines)
  local row = edit.srow + #lines - 1
  local col = (#lines == 1 and edit.scol or 0) + #lines[#lines]
  pcall(api.nvim_win_set_cursor, 0, { row + 1, math.max(0, col - 1) })
  if client and type(edit.command) == 'table' and edit.command.command then
    util.execute(client, edit.command.command, edit.command.arguments or {}, bufnr, function() end)
  end
  request_soon(bufnr) -- the applied edit is the last one now: what follows it?
  return true
end

local function map_accept(bufnr)
  local lhs = (options().keymap or {}).accept
  if not lhs then
    return
  end
  vim.keymap.set('n', lhs, function()
    if M.current(bufnr) then
      vim.schedule(function()
        M.jump_or_apply(bufnr)
      end)
      return ''
    end
    return lhs
  end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = 'copilot-server: next edit' })
end

local esc_watch = false

local function watch_esc()
  if esc_watch or (options().keymap or {}).dismiss == false then
    return
  end
  esc_watch = true
  local esc = vim.keycode('<Esc>')
  vim.on_key(function(key, typed)
    -- `typed` can hold more than the one key (a key held for a longer mapping comes along).
    if key == esc or (typed and typed:find(esc, 1, true)) then
      local bufnr = api.nvim_get_current_buf()
      if states[bufnr] and states[bufnr].edit then
        vim.schedule(function()
          M.clear(bufnr)
        end)
      end
    end
  end, ns)
end

--- Starts next edits for a buffer the server is attached to.
function M.attach(bufnr)
  if states[bufnr] or options().enabled == false then
    return
  end
  states[bufnr] = { bufnr = bufnr }
  local group = api.nvim_create_augroup('copilot_server.next_edit.' .. bufnr, { clear = true })
  api.nvim_create_autocmd({ 'InsertLeave', 'TextChanged' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      request_soon(bufnr)
    end,
  })
  -- Typing anywhere (or entering insert mode) dismisses the edit.
  api.nvim_create_autocmd({ 'InsertEnter', 'TextChangedI', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  api.nvim_create_autocmd('BufEnter', {
    group = group,
    buffer = bufnr,
    callback = function()
      local client = util.client(bufnr)
      if client then -- as Copilot's clients do: which document the user looks at
        util.notify(client, 'textDocument/didFocus', { textDocument = { uri = vim.uri_from_bufnr(bufnr) } })
      end
    end,
  })
  api.nvim_create_autocmd({ 'BufUnload', 'LspDetach' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.detach(bufnr)
    end,
  })
  map_accept(bufnr)
  watch_esc()
end

function M.detach(bufnr)
  local st = states[bufnr]
  if not st then
    return
  end
  M.clear(bufnr)
  if st.timer then
    st.timer:close()
  end
  states[bufnr] = nil
  pcall(api.nvim_del_augroup_by_name, 'copilot_server.next_edit.' .. bufnr)
end

function M.set_highlights()
  api.nvim_set_hl(0, 'CopilotServerNextEditDelete', { link = 'DiffDelete', default = true })
  api.nvim_set_hl(0, 'CopilotServerNextEditAdd', { link = 'DiffAdd', default = true })
  api.nvim_set_hl(0, 'CopilotServerNextEditSign', { link = 'DiagnosticHint', default = true })
  -- Struck through as well, whatever the colour scheme's DiffDelete looks like.
  api.nvim_set_hl(0, 'CopilotServerNextEditStrike', { strikethrough = true, default = true })
end

return M
