-- Scenarios for harness.lua: each drives Neovim like a user and records what it saw in R.
-- The assertions live in tests/test_nvim.py.

local api = vim.api

local SAMPLE = {
  'import json',
  '',
  '',
  'def load_config(path):',
  '    with open(path) as f:',
}

local S = {}

--- setup() with the server from $COPILOT_SERVER_CMD, open a Python file, wait until the
--- server has loaded its model. Returns the buffer and the client.
local function start(T, opts)
  local copilot = require('copilot_server')
  local util = require('copilot_server.util')
  local server = assert(os.getenv('COPILOT_SERVER_CMD'), 'COPILOT_SERVER_CMD not set')
  copilot.setup(vim.tbl_deep_extend('force', { cmd = { server, '--stdio' } }, opts or {}))

  -- Record every request the plugin sends (method and inline trigger kind).
  T.result.requests = {}
  local request = util.request
  util.request = function(client, method, params, handler, bufnr)
    local kind = method == 'textDocument/inlineCompletion' and params.context.triggerKind or nil
    table.insert(T.result.requests, { method = method, trigger_kind = kind })
    return request(client, method, params, handler, bufnr)
  end

  local path = assert(os.getenv('COPILOT_NVIM_WORKDIR')) .. '/example.py'
  vim.fn.writefile(SAMPLE, path)
  vim.cmd.edit(vim.fn.fnameescape(path))
  local bufnr = api.nvim_get_current_buf()
  local client = T.wait(function()
    return util.client(bufnr)
  end, 20000, 'the copilot_server client to attach')
  T.wait(function()
    return copilot.state(bufnr) == 'ready'
  end, 90000, 'copilot/status ready')
  T.result.filetype = vim.bo[bufnr].filetype
  T.result.offset_encoding = client.offset_encoding
  -- Indent exactly as typed, whatever indent plugin the runtime has.
  vim.bo[bufnr].autoindent = false
  vim.bo[bufnr].indentexpr = ''
  return bufnr, client
end

--- Type on a new line, get ghost text while typing, accept it with Tab.
function S.ghost_accept(T, R)
  local bufnr, client = start(T)
  T.feed('GA<CR>        ')
  R.typed_line = T.line()
  R.mode_while_typing = api.nvim_get_mode().mode
  R.ghost = T.wait(function()
    return T.ghost(bufnr)
  end, 60000, 'ghost text')
  local _, details, mark = T.ghost(bufnr)
  R.virt_text_pos = details.virt_text_pos
  R.mark_pos = { mark[2], mark[3] }
  R.cursor_before = api.nvim_win_get_cursor(0)
  R.visible = require('copilot_server').is_visible()

  T.feed('<Tab>')
  R.lines = T.lines(bufnr)
  R.cursor_after = api.nvim_win_get_cursor(0)
  R.mode_after = api.nvim_get_mode().mode
  local status = T.wait(function()
    local answer = T.execute(client, 'copilot.status')
    local metrics = answer.result and answer.result.metrics
    return metrics and metrics.accepted >= 1 and answer.result
  end, 10000, 'the accept command to reach the server')
  R.metrics = status.metrics
end

--- Manual trigger, dismiss, accept word, accept line, and Tab falling back to a Tab.
function S.partial_accept(T, R)
  local bufnr, client = start(T, { suggestion = { auto_trigger = false } })
  T.feed('GA<CR>        ')
  T.sleep(500)
  R.ghost_without_trigger = T.ghost(bufnr) or vim.NIL

  T.feed('<M-\\>')
  R.ghost = T.wait(function()
    return T.ghost(bufnr)
  end, 60000, 'ghost text after <M-\\>')
  T.feed('<C-]>')
  R.ghost_after_dismiss = T.ghost(bufnr) or vim.NIL
  R.line_after_dismiss = T.line()

  T.feed('<M-\\>')
  R.ghost_again = T.wait(function()
    return T.ghost(bufnr)
  end, 60000, 'ghost text after the second <M-\\>')

  T.feed('<M-Right>')
  R.line_after_word = T.line()
  R.ghost_after_word = T.ghost(bufnr) or vim.NIL

  T.feed('<M-C-Right>')
  R.lines_after_line = T.lines(bufnr)
  R.ghost_after_line = T.ghost(bufnr) or vim.NIL
  -- A multi-line suggestion still has lines left: take them all.
  if T.ghost(bufnr) then
    T.feed('<Tab>')
  end
  R.lines_accepted = T.lines(bufnr)
  R.ghost_after_all = T.ghost(bufnr) or vim.NIL

  -- Nothing is shown now (auto_trigger is off), so Tab must insert indentation.
  R.line_before_tab = T.line()
  T.feed('<Tab>')
  R.line_after_tab = T.line()
  R.expandtab = vim.bo[bufnr].expandtab

  local answer = T.execute(client, 'copilot.status')
  R.metrics = answer.result and answer.result.metrics
end

--- :CopilotServer explain on lines 4-5 opens a Markdown float; :CopilotServer fix applies a fix.
function S.explain(T, R)
  -- A short answer is enough to see the float; it keeps the test quick on a CPU.
  local bufnr, client = start(T, { settings = { explainMaxTokens = 64, fixMaxTokens = 96 } })
  R.has_explain = require('copilot_server.util').has_command(client, 'copilot.explain')
  if not R.has_explain then
    return
  end
  local t0 = vim.uv.now()
  vim.cmd('4,5CopilotServer explain')
  local win = T.wait(function()
    for _, w in ipairs(api.nvim_list_wins()) do
      if api.nvim_win_get_config(w).relative ~= '' then
        return w
      end
    end
  end, 120000, 'the explain float')
  R.explain_ms = vim.uv.now() - t0
  local fbuf = api.nvim_win_get_buf(win)
  R.float_lines = api.nvim_buf_get_lines(fbuf, 0, -1, false)
  R.float_filetype = vim.bo[fbuf].filetype
  R.float_is_explain = vim.w[win].copilot_server_explain == true
  R.current_buf_unchanged = api.nvim_get_current_buf() == bufnr
  api.nvim_win_close(win, true)

  -- Fix: a syntax error (missing colon), fixed through vim.lsp.buf.code_action.
  local broken = assert(os.getenv('COPILOT_NVIM_WORKDIR')) .. '/broken.py'
  vim.fn.writefile({ 'def add(a, b)', '    return a + b' }, broken)
  vim.cmd.edit(vim.fn.fnameescape(broken))
  local fbufnr = api.nvim_get_current_buf()
  T.wait(function()
    return require('copilot_server.util').client(fbufnr)
  end, 20000, 'the client to attach to broken.py')
  api.nvim_win_set_cursor(0, { 1, 0 })
  local tick = api.nvim_buf_get_changedtick(fbufnr)
  t0 = vim.uv.now()
  vim.cmd('CopilotServer fix')
  T.wait(function()
    return api.nvim_buf_get_changedtick(fbufnr) ~= tick
  end, 120000, 'the fix to be applied')
  R.fix_ms = vim.uv.now() - t0
  R.fixed_lines = T.lines(fbufnr)
end

--- :checkhealth copilot_server and :CopilotServer status|disable|enable|restart.
function S.commands(T, R)
  local bufnr, client = start(T)
  local copilot = require('copilot_server')
  local util = require('copilot_server.util')

  vim.cmd('checkhealth copilot_server')
  R.health = api.nvim_buf_get_lines(0, 0, -1, false)
  vim.cmd('tabclose')

  vim.cmd('CopilotServer disable')
  T.wait(function()
    local status = copilot.last_status[client.id]
    return status and status.enabled == false
  end, 10000, 'completions off')
  R.state_disabled = copilot.state(bufnr)
  R.plugin_enabled_after_disable = copilot.is_enabled()

  vim.cmd('CopilotServer enable')
  T.wait(function()
    local status = copilot.last_status[client.id]
    return status and status.enabled == true
  end, 10000, 'completions on')
  R.state_enabled = copilot.state(bufnr)

  local before = #R.messages
  vim.cmd('CopilotServer status')
  R.status_message = T.wait(function()
    local m = R.messages[before + 1]
    return m and m.msg
  end, 10000, ':CopilotServer status output')

  vim.cmd('CopilotServer restart')
  local new = T.wait(function()
    local c = util.client(bufnr)
    return c and c.id ~= client.id and c
  end, 20000, 'a new client after restart')
  T.wait(function()
    return copilot.state(bufnr) == 'ready'
  end, 90000, 'ready after restart')
  R.old_client_stopped = vim.lsp.get_client_by_id(client.id) == nil
  R.clients_after_restart = #util.clients()
  R.new_client = new.id
  R.statusline = copilot.statusline()
end

return S
