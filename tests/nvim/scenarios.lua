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
  local one = { completion = { alternatives = 1 } } -- cycling has its own scenario
  local bufnr, client = start(T, { suggestion = { auto_trigger = false }, settings = one })
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

local function ghost_of(T, bufnr, what)
  return T.wait(function()
    return T.ghost(bufnr)
  end, 120000, what or 'ghost text')
end

--- Typing along a suggestion (no new request), cycling through the alternatives the server
--- gives an explicit request, and accept as its own undo step.
function S.type_along_cycle_undo(T, R)
  local bufnr = start(T)
  T.feed('GA<CR>        ')
  local ghost = ghost_of(T, bufnr)
  R.ghost = ghost

  local asked = T.inline_requests()
  R.typed = ghost:sub(1, 2)
  T.type(R.typed)
  T.sleep(600) -- well past debounce_ms: a new request would have gone out by now
  R.requests_while_typing_along = T.inline_requests() - asked
  R.ghost_after_typing_along = T.ghost(bufnr) or vim.NIL

  -- Typing brought one suggestion; <M-]> asks the server for the alternatives.
  asked = T.inline_requests()
  T.feed('<M-]>')
  R.counter = T.wait(function()
    local counter = T.counter(bufnr)
    return counter and counter:match('^%(2/') and counter
  end, 120000, 'the second suggestion')
  R.cycle_requests = T.inline_requests() - asked
  R.cycle_kind = T.result.requests[#T.result.requests].trigger_kind
  R.ghost_second = T.ghost(bufnr) or vim.NIL
  T.feed('<M-[>')
  R.counter_back = T.counter(bufnr) or vim.NIL
  R.ghost_first = T.ghost(bufnr) or vim.NIL

  R.lines_before_accept = T.lines(bufnr)
  T.feed('<Tab>')
  R.lines_after_accept = T.lines(bufnr)
  T.feed('<Esc>u')
  R.lines_after_undo = T.lines(bufnr)
end

--- Dismissal on cursor move and InsertLeave, the popup menu over a suggestion, and a Tab
--- mapping made after attach.
function S.dismiss_popup_tab(T, R)
  -- One suggestion per request: cycling has its own scenario; this one stays quick.
  local one = { completion = { alternatives = 1 } }
  local bufnr = start(T, { suggestion = { auto_trigger = false }, settings = one })
  T.feed('GA<CR>        ')
  T.feed('<M-\\>')
  R.ghost = ghost_of(T, bufnr)
  T.feed('<Left>')
  R.ghost_after_move = T.ghost(bufnr) or vim.NIL
  T.feed('<End><M-\\>')
  ghost_of(T, bufnr, 'ghost text again')

  -- Keyword completion (<C-n>, the buffer's words) opens the popup menu, inserting nothing.
  vim.o.completeopt = 'menu,menuone,noinsert,noselect'
  T.feed('<C-n>')
  R.popup_visible = vim.fn.pumvisible() == 1
  R.ghost_under_popup = T.ghost(bufnr) or vim.NIL
  R.visible_under_popup = require('copilot_server').is_visible()
  T.feed('<C-e>')
  T.sleep(100)
  R.popup_after_close = vim.fn.pumvisible() == 1
  R.ghost_after_popup = T.ghost(bufnr) or vim.NIL

  T.feed('<Esc>')
  R.ghost_after_leave = T.ghost(bufnr) or vim.NIL

  -- A global Tab mapping made now, after attach (as a lazy-loaded completion plugin does).
  vim.g.late_tab = 0
  vim.keymap.set('i', '<Tab>', function()
    vim.g.late_tab = vim.g.late_tab + 1
  end, { desc = 'a mapping made after attach' })
  T.feed('A')
  R.line_before_tab = T.line()
  T.feed('<Tab>')
  R.late_tab_without_ghost = vim.g.late_tab
  R.line_after_tab = T.line()
  T.feed('<M-\\>')
  R.ghost_for_tab = ghost_of(T, bufnr, 'ghost text for Tab')
  T.feed('<Tab>')
  R.late_tab_with_ghost = vim.g.late_tab
  R.lines_after_accept = T.lines(bufnr)
end

--- Which buffers get the server (every real file's filetype, minus the excluded ones and
--- those over max_file_size) and the run-time switches per filetype and buffer.
function S.filetypes_and_size(T, R)
  local bufnr = start(T)
  local util = require('copilot_server.util')
  local buffers = require('copilot_server.buffers')
  local dir = assert(os.getenv('COPILOT_NVIM_WORKDIR'))
  local function open(name, lines)
    local path = dir .. '/' .. name
    vim.fn.writefile(lines, path)
    vim.cmd.edit(vim.fn.fnameescape(path))
    return api.nvim_get_current_buf()
  end
  local function attached(b)
    return util.client(b) ~= nil
  end

  local css = open('style.css', { 'body {', '  color: red;', '}' })
  R.css_filetype = vim.bo[css].filetype
  R.css_attached = T.wait(function()
    return attached(css)
  end, 20000, 'the client to attach to style.css')

  local commit = open('COMMIT_EDITMSG', { 'Fix the parser', '' })
  R.commit_filetype = vim.bo[commit].filetype
  vim.cmd('help help')
  R.help_buftype = vim.bo.buftype
  local help = api.nvim_get_current_buf()
  local big_lines = {}
  for i = 1, 25000 do
    big_lines[i] = ('VALUE_%05d = "%s"'):format(i, string.rep('x', 30))
  end
  vim.cmd('close')
  local big = open('big.py', big_lines)
  R.big_bytes = buffers.size(big)
  T.sleep(500) -- time for an attach that must not happen
  R.commit_attached = attached(commit)
  R.help_attached = attached(help)
  R.big_attached = attached(big)
  local before = #R.messages
  vim.cmd('CopilotServer status')
  R.status_message = T.wait(function()
    local m = R.messages[before + 1]
    return m and m.msg
  end, 10000, ':CopilotServer status output')

  vim.cmd.buffer(bufnr)
  vim.cmd('CopilotServer disable filetype')
  R.enabled_after_filetype_off = buffers.enabled(bufnr)
  local asked = T.inline_requests()
  T.feed('GA<CR>    <M-\\>')
  T.sleep(300)
  R.requests_while_off = T.inline_requests() - asked
  T.feed('<Esc>')
  vim.cmd('CopilotServer enable filetype')
  R.enabled_after_filetype_on = buffers.enabled(bufnr)
  vim.cmd('CopilotServer disable buffer')
  R.enabled_after_buffer_off = buffers.enabled(bufnr)
  vim.cmd('CopilotServer enable buffer')
  R.enabled_after_buffer_on = buffers.enabled(bufnr)

  -- An excluded filetype switched on for one buffer gets the server.
  vim.cmd.buffer(commit)
  vim.cmd('CopilotServer enable buffer')
  R.commit_attached_after_enable = T.wait(function()
    return attached(commit)
  end, 20000, 'the client to attach to COMMIT_EDITMSG') and true
end

--- The Neovim 0.12 path against a stand-in of vim.lsp.inline_completion (no server).
S.native_stub = dofile((debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './') .. 'native_stub.lua')

return S
