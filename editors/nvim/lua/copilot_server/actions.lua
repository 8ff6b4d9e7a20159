---@mod copilot_server.actions Explain (a Markdown float) and Fix (a code action).

local api = vim.api
local config = require('copilot_server.config')
local util = require('copilot_server.util')

local M = {}

local EXPLAIN = 'copilot.explain'

---@class copilot_server.Range  0-based rows, byte columns, end exclusive
---@field start integer[] {row, col}
---@field ['end'] integer[] {row, col}

--- The range a command was given: a charwise visual selection, whole lines, or nil.
---@param opts table|nil user-command opts (range, line1, line2)
---@return copilot_server.Range|nil
function M.command_range(opts)
  if not opts or (opts.range or 0) == 0 then
    return nil
  end
  local vstart, vend = api.nvim_buf_get_mark(0, '<'), api.nvim_buf_get_mark(0, '>')
  if vim.fn.visualmode() == 'v' and vstart[1] == opts.line1 and vend[1] == opts.line2 then
    local last = api.nvim_buf_get_lines(0, vend[1] - 1, vend[1], false)[1] or ''
    -- '> marks the first byte of the last selected character; include all of it.
    local ecol = math.min(vend[2] + #vim.fn.strcharpart(last:sub(vend[2] + 1), 0, 1), #last)
    return { start = { vstart[1] - 1, vstart[2] }, ['end'] = { vend[1] - 1, ecol } }
  end
  local last = api.nvim_buf_get_lines(0, opts.line2 - 1, opts.line2, false)[1] or ''
  return { start = { opts.line1 - 1, 0 }, ['end'] = { opts.line2 - 1, #last } }
end

--- The visual selection when called from visual mode (which it then leaves), else nil.
---@return copilot_server.Range|nil
function M.visual_range()
  local mode = api.nvim_get_mode().mode
  if mode ~= 'v' and mode ~= 'V' and mode ~= '\22' then
    return nil
  end
  local a, b = vim.fn.getpos('v'), vim.fn.getpos('.')
  if a[2] > b[2] or (a[2] == b[2] and a[3] > b[3]) then
    a, b = b, a
  end
  api.nvim_feedkeys(vim.keycode('<Esc>'), 'nx', false)
  local last = api.nvim_buf_get_lines(0, b[2] - 1, b[2], false)[1] or ''
  if mode ~= 'v' then
    return { start = { a[2] - 1, 0 }, ['end'] = { b[2] - 1, #last } }
  end
  local ecol = math.min(b[3] - 1 + #vim.fn.strcharpart(last:sub(b[3]), 0, 1), #last)
  return { start = { a[2] - 1, a[3] - 1 }, ['end'] = { b[2] - 1, ecol } }
end

---@param bufnr integer
---@param range copilot_server.Range|nil nil = the cursor (an empty range)
---@param encoding string
local function lsp_range(bufnr, range, encoding)
  if not range then
    local pos = api.nvim_win_get_cursor(0)
    range = { start = { pos[1] - 1, pos[2] }, ['end'] = { pos[1] - 1, pos[2] } }
  end
  local function position(p)
    local line = api.nvim_buf_get_lines(bufnr, p[1], p[1] + 1, false)[1] or ''
    return { line = p[1], character = util.char_col(line, p[2], encoding) }
  end
  return { start = position(range.start), ['end'] = position(range['end']) }
end

local explain_win

--- Shows Markdown in a float next to the cursor; `q` closes it. Returns buf, win.
---@param markdown string
function M.show(markdown)
  if explain_win and api.nvim_win_is_valid(explain_win) then
    api.nvim_win_close(explain_win, true)
  end
  local opts = config.options.explain
  local lines = vim.split(markdown, '\n', { plain = true, trimempty = true })
  if #lines == 0 then
    lines = { '_(no explanation)_' }
  end
  local buf, win = vim.lsp.util.open_floating_preview(lines, 'markdown', {
    border = opts.border,
    max_width = opts.max_width,
    max_height = opts.max_height,
    title = ' copilot-server: explain ',
    title_pos = 'center',
  })
  vim.w[win].copilot_server_explain = true
  explain_win = win
  if opts.enter then
    api.nvim_set_current_win(win)
  end
  return buf, win
end

--- Sends copilot.explain with `args` ([{uri, range}]) and shows the answer in a float.
local function request_explain(client, bufnr, args, on_done)
  api.nvim_echo({ { 'copilot-server: explaining…', 'Comment' } }, false, {})
  util.execute(client, EXPLAIN, args, bufnr, function(err, result)
    if err then
      util.warn('explain failed: ' .. (err.message or vim.inspect(err)))
    elseif result and result.markdown then
      api.nvim_echo({ { '' } }, false, {})
      M.show(result.markdown)
    end
    if on_done then
      on_done(err, result)
    end
  end)
end

--- Asks the server to explain the range (default: the code around the cursor, which the
--- server widens to the enclosing function or class) and shows the Markdown in a float.
---@param range copilot_server.Range|nil
---@param on_done fun(err: table|nil, result: table|nil)|nil
function M.explain(range, on_done)
  local bufnr = api.nvim_get_current_buf()
  local client = util.client(bufnr)
  if not client then
    util.warn('not attached to this buffer')
    return
  end
  if not util.has_command(client, EXPLAIN) then
    util.warn('this server has no ' .. EXPLAIN .. ' command; update copilot-server')
    return
  end
  local args = {
    { uri = vim.uri_from_bufnr(bufnr), range = lsp_range(bufnr, range, client.offset_encoding) },
  }
  request_explain(client, bufnr, args, on_done)
end

--- Client-side handler for the copilot.explain command, so that the "Explain … (copilot)"
--- code action (e.g. from `gra`) also ends in the float rather than in a discarded reply.
function M.explain_command(command, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if client then
    request_explain(client, ctx.bufnr, command.arguments or {})
  end
end

--- Whether a code action came from copilot-server (its kind, command or title say so).
function M.is_ours(action)
  local function mentions(s)
    return type(s) == 'string' and s:lower():find('copilot', 1, true) ~= nil
  end
  local command = type(action.command) == 'table' and action.command.command or action.command
  return mentions(action.kind) or mentions(command) or mentions(action.title)
    or (type(action.data) == 'table' and mentions(action.data.source))
end

--- Diagnostics of any source (other language servers, linters) on rows first..last, in
--- LSP form, so the server can offer a fix for each of them.
local function diagnostics_on(bufnr, first, last)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    if d.lnum >= first and d.lnum <= last then
      local lsp = type(d.user_data) == 'table' and d.user_data.lsp or nil
      out[#out + 1] = lsp
        or {
          range = {
            start = { line = d.lnum, character = d.col },
            ['end'] = { line = d.end_lnum or d.lnum, character = d.end_col or d.col },
          },
          message = d.message,
          severity = d.severity,
          source = d.source,
        }
    end
  end
  return out
end

--- Offers the server's fixes (quickfix code actions) for the range (default: the cursor's
--- line, or the visual selection) through vim.lsp.buf.code_action; a single fix is
--- applied directly. The server fixes syntax errors it finds itself and any diagnostic
--- on those lines.
---@param range copilot_server.Range|nil
function M.fix(range)
  local bufnr = api.nvim_get_current_buf()
  if not util.client(bufnr) then
    util.warn('not attached to this buffer')
    return
  end
  local first, last
  if range then
    first, last = range.start[1], range['end'][1]
  else
    local mode = api.nvim_get_mode().mode
    local a, b = vim.fn.line('v') - 1, vim.fn.line('.') - 1
    if mode:match('^[vV\22]') then
      first, last = math.min(a, b), math.max(a, b)
    else
      first, last = b, b
    end
  end
  local opts = {
    filter = M.is_ours,
    apply = true,
    context = { only = { 'quickfix' }, diagnostics = diagnostics_on(bufnr, first, last) },
  }
  if range then
    -- code_action takes (1,0)-indexed positions with an inclusive end.
    opts.range = {
      start = { range.start[1] + 1, range.start[2] },
      ['end'] = { range['end'][1] + 1, math.max(range['end'][2] - 1, 0) },
    }
  end
  vim.lsp.buf.code_action(opts)
end

return M
