-- Next edit scenarios for harness.lua (COPILOT_NVIM_SCENARIOS=next_edit_scenarios.lua).
-- The assertions live in tests/test_next_edit.py.

local api = vim.api

local S = {}

local SAMPLE = {
  'def area(w, h):',
  '    return w * h',
  '',
  '',
  'print(area(2, 3))',
  'x = area(4, 5)',
}

local function start(T)
  local copilot = require('copilot_server')
  local util = require('copilot_server.util')
  local server = assert(os.getenv('COPILOT_SERVER_CMD'), 'COPILOT_SERVER_CMD not set')
  -- Ghost text off: this scenario is about next edits, which need no model (propagation).
  copilot.setup({ cmd = { server, '--stdio' }, suggestion = { auto_trigger = false } })
  local path = assert(os.getenv('COPILOT_NVIM_WORKDIR')) .. '/shapes.py'
  vim.fn.writefile(SAMPLE, path)
  vim.cmd.edit(vim.fn.fnameescape(path))
  local bufnr = api.nvim_get_current_buf()
  local client = T.wait(function()
    return util.client(bufnr)
  end, 20000, 'the copilot_server client to attach')
  vim.bo[bufnr].autoindent = false
  vim.bo[bufnr].indentexpr = ''
  return bufnr, client
end

--- What the preview shows: the struck range and the new text.
local function preview(bufnr)
  local ns = require('copilot_server.next_edit').ns
  local out = { deleted = {}, added = {}, signs = {} }
  for _, mark in ipairs(api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })) do
    local row, col, d = mark[2], mark[3], mark[4]
    if d.hl_group == 'CopilotServerNextEditDelete' then
      local text = api.nvim_buf_get_text(bufnr, row, col, d.end_row, d.end_col, {})
      table.insert(out.deleted, { row = row, col = col, text = table.concat(text, '\n') })
    elseif d.virt_text then
      table.insert(out.added, { row = row, col = col, text = d.virt_text[1][1], pos = d.virt_text_pos })
    elseif d.sign_text then
      table.insert(out.signs, row)
    end
  end
  return out
end

local function shown(bufnr)
  return require('copilot_server.next_edit').current(bufnr) ~= nil
end

--- Rename a function in its definition: the edit at its first use is shown, Tab jumps to
--- it, Tab applies it (one undo step), the next use follows; Esc and typing dismiss.
function S.rename_jump_apply(T, R)
  local bufnr = start(T)
  -- Rename `area` on line 1 as a user would: change the word, leave insert mode.
  api.nvim_win_set_cursor(0, { 1, 4 })
  T.feed('ciw')
  T.type('surface')
  T.feed('<Esc>')
  R.line1 = T.lines(bufnr)[1]
  T.wait(function()
    return shown(bufnr)
  end, 20000, 'a next edit after the rename')
  R.preview = preview(bufnr)
  R.cursor_before = api.nvim_win_get_cursor(0)

  T.feed('<Tab>')
  T.sleep(50)
  R.cursor_after_jump = api.nvim_win_get_cursor(0)
  R.shown_after_jump = shown(bufnr)
  local before_apply = vim.fn.undotree().seq_cur
  T.feed('<Tab>')
  T.sleep(50)
  R.lines_after_apply = T.lines(bufnr)
  R.undo_steps = vim.fn.undotree().seq_cur - before_apply

  -- The applied edit is the newest hunk: the next use is offered next.
  T.wait(function()
    return shown(bufnr)
  end, 20000, 'the next edit after applying one')
  R.preview_next = preview(bufnr)
  -- Esc dismisses it.
  T.feed('<Esc>')
  T.sleep(50)
  R.shown_after_esc = shown(bufnr)

  -- One undo takes back exactly the applied edit.
  T.feed('u')
  R.lines_after_undo = T.lines(bufnr)
  T.feed('<C-r>')

  -- Shown again (a normal-mode change asks), then typing elsewhere dismisses it.
  T.feed('r ')
  T.feed('u')
  T.wait(function()
    return shown(bufnr)
  end, 20000, 'a next edit after a normal-mode change')
  api.nvim_win_set_cursor(0, { 3, 0 })
  T.feed('i')
  T.type('# note')
  R.shown_after_typing = shown(bufnr)
  T.feed('<Esc>')
end

return S
