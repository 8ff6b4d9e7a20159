---@mod copilot_server A local code copilot for Neovim: ghost text, Explain and Fix.
---
--- require('copilot_server').setup({}) starts `copilot-server --stdio` (vim.lsp.start) for
--- the configured filetypes and shows its inline completions as ghost text.

local api = vim.api
local actions = require('copilot_server.actions')
local config = require('copilot_server.config')
local suggestion = require('copilot_server.suggestion')
local util = require('copilot_server.util')

local M = {}

-- Neovim filetypes whose LSP languageId differs from the filetype.
local LANGUAGE_IDS = { sh = 'shellscript', bash = 'shellscript', zsh = 'shellscript' }

--- Last `copilot/status` notification per client id.
---@type table<integer, table>
M.last_status = {}

local enabled = true

local function use_native()
  return config.options.native and require('copilot_server.native').available()
end

local function server_settings()
  local settings = vim.deepcopy(config.options.settings or {})
  if not enabled then
    settings.completion = settings.completion or {}
    settings.completion.enabled = false
  end
  return vim.tbl_isempty(settings) and vim.empty_dict() or settings
end

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  -- Before 0.12 Neovim does not announce inline completion; we do, since this plugin
  -- speaks it. The server then skips its textDocument/completion fallback.
  caps.textDocument = caps.textDocument or {}
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion or { dynamicRegistration = false }
  return caps
end

local function on_status(_, params, ctx)
  if type(params) ~= 'table' then
    return
  end
  M.last_status[ctx.client_id] = params
  api.nvim_exec_autocmds('User', { pattern = 'CopilotServerStatus', data = params, modeline = false })
  pcall(vim.cmd.redrawstatus)
end

local function wanted(bufnr)
  if not api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' then
    return false
  end
  local ft = vim.bo[bufnr].filetype
  local fts = config.options.filetypes
  return ft ~= '' and (vim.list_contains(fts, '*') or vim.list_contains(fts, ft))
end

--- Starts (or reuses) the server for a buffer. Returns the client id, or nil.
---@param bufnr integer|nil
function M.start(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  if not wanted(bufnr) then
    return nil
  end
  local opts = config.options
  local cmd = opts.cmd
  if vim.fn.executable(cmd[1]) ~= 1 then
    vim.notify_once(
      ('copilot-server: %q not found; install copilot-server or set cmd in setup()'):format(cmd[1]),
      vim.log.levels.WARN
    )
    return nil
  end
  local name = api.nvim_buf_get_name(bufnr)
  local root = vim.fs.root(bufnr, opts.root_markers)
    or (name ~= '' and vim.fs.dirname(name))
    or vim.uv.cwd()
  local settings = server_settings()
  return vim.lsp.start({
    name = util.name,
    cmd = cmd,
    root_dir = root,
    capabilities = capabilities(),
    init_options = { copilotServer = settings },
    settings = { copilotServer = settings },
    commands = { ['copilot.explain'] = actions.explain_command },
    handlers = {
      ['copilot/status'] = on_status,
      -- copilot.explain also returns the Markdown; the float is opened from that reply.
      ['copilot/explanation'] = function() end,
    },
    get_language_id = function(_, filetype)
      return LANGUAGE_IDS[filetype] or filetype
    end,
  }, { bufnr = bufnr })
end

local function on_attach(bufnr, client)
  if use_native() then
    require('copilot_server.native').attach(bufnr, client)
  else
    suggestion.attach(bufnr)
  end
end

local function set_highlights()
  api.nvim_set_hl(0, 'CopilotServerSuggestion', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'CopilotServerCount', { link = 'NonText', default = true })
end

---@param opts table|nil see copilot_server.config.defaults
function M.setup(opts)
  config.set(opts)
  set_highlights()
  local group = api.nvim_create_augroup('copilot_server', { clear = true })
  api.nvim_create_autocmd('ColorScheme', { group = group, callback = set_highlights })
  api.nvim_create_autocmd('FileType', {
    group = group,
    callback = function(args)
      M.start(args.buf)
    end,
  })
  api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == util.name then
        on_attach(args.buf, client)
      end
    end,
  })
  api.nvim_create_autocmd('LspDetach', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == util.name then
        suggestion.clear(args.buf)
      end
    end,
  })
  api.nvim_create_user_command('CopilotServer', function(cmd)
    M.command(cmd.fargs[1] or 'status', cmd)
  end, {
    nargs = '?',
    range = true,
    desc = 'copilot-server: status|enable|disable|toggle|restart|explain|fix',
    complete = function(lead)
      return vim.tbl_filter(function(s)
        return vim.startswith(s, lead)
      end, { 'status', 'enable', 'disable', 'toggle', 'restart', 'explain', 'fix' })
    end,
  })
  -- Buffers opened before setup() (e.g. a lazy-loaded plugin) get the server too.
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) then
      M.start(bufnr)
    end
  end
end

local subcommands = {
  status = function()
    M.print_status()
  end,
  enable = function()
    M.enable()
  end,
  disable = function()
    M.disable()
  end,
  toggle = function()
    M.toggle()
  end,
  restart = function()
    M.restart()
  end,
  explain = function(cmd)
    actions.explain(actions.command_range(cmd))
  end,
  fix = function(cmd)
    actions.fix(actions.command_range(cmd))
  end,
}

--- `:CopilotServer {sub}`.
function M.command(sub, cmd)
  local fn = subcommands[sub]
  if not fn then
    util.warn(('unknown subcommand %q (status, enable, disable, toggle, restart, explain, fix)'):format(sub))
    return
  end
  fn(cmd or {})
end

--- The server's state ('loading', 'ready', 'busy', 'error', 'disabled') for a buffer, or nil.
function M.state(bufnr)
  local client = util.client(bufnr or 0)
  local status = client and M.last_status[client.id]
  return status and status.state or (client and 'starting' or nil)
end

--- A short string for a statusline: '' when no server runs for the current buffer.
function M.statusline()
  local state = M.state(0)
  return state and ('copilot:' .. state) or ''
end

--- Asks each running server for copilot.status; calls on_result(client, err, result).
function M.query_status(on_result)
  for _, client in ipairs(util.clients()) do
    util.execute(client, 'copilot.status', {}, nil, function(err, result)
      on_result(client, err, result)
    end)
  end
end

local function describe(result)
  local gpu = result.gpuOffloadSupported
  local parts = {
    ('state %s%s'):format(result.state or '?', result.message and (' (' .. result.message .. ')') or ''),
    ('model %s'):format(result.modelName or result.model or 'none yet'),
    ('GPU layers %s (offload %s)'):format(
      tostring(result.gpuLayers or 0),
      gpu == nil and 'unknown' or (gpu and 'supported' or 'not supported by this build')
    ),
    ('completions %s'):format(result.enabled == false and 'off' or 'on'),
  }
  local metrics = type(result.metrics) == 'table' and result.metrics or {}
  local keys = vim.tbl_keys(metrics)
  table.sort(keys)
  local figures = {}
  for _, key in ipairs(keys) do
    local value = metrics[key]
    if type(value) == 'number' or type(value) == 'string' or type(value) == 'boolean' then
      figures[#figures + 1] = ('%s=%s'):format(key, tostring(value))
    end
  end
  local text = table.concat(parts, ', ')
  if #figures > 0 then
    text = text .. '\n  ' .. table.concat(figures, ' ')
  end
  return text
end
M._describe = describe

function M.print_status()
  local clients = util.clients()
  if #clients == 0 then
    util.info('not running (open a file of a configured filetype, or :CopilotServer restart)')
    return
  end
  M.query_status(function(client, err, result)
    if err or type(result) ~= 'table' then
      util.warn(('client %d: copilot.status failed: %s'):format(client.id, err and err.message or 'no result'))
      return
    end
    util.info(describe(result))
  end)
end

--- Turns completions on or off, here and in every running server (copilot.toggle).
function M.set_enabled(on)
  enabled = on
  suggestion.enabled = on
  if not on then
    for _, bufnr in ipairs(api.nvim_list_bufs()) do
      suggestion.clear(bufnr)
    end
  end
  M.query_status(function(client, _, result)
    if type(result) == 'table' and result.enabled ~= on then
      util.execute(client, 'copilot.toggle', {}, nil)
    end
  end)
end

function M.enable()
  M.set_enabled(true)
end

function M.disable()
  M.set_enabled(false)
end

function M.toggle()
  M.set_enabled(not enabled)
end

function M.is_enabled()
  return enabled
end

--- Stops every copilot_server client and starts it again for the buffers it served.
function M.restart()
  local buffers, ids = {}, {}
  for _, client in ipairs(util.clients()) do
    ids[#ids + 1] = client.id
    for bufnr in pairs(client.attached_buffers or {}) do
      buffers[#buffers + 1] = bufnr
      suggestion.clear(bufnr)
    end
    util.stop(client)
  end
  if #ids == 0 then
    buffers = api.nvim_list_bufs()
  end
  local waited = 0
  local function start_when_stopped()
    local alive = vim.tbl_filter(function(id)
      local c = vim.lsp.get_client_by_id(id)
      return c ~= nil and not (c.is_stopped and c:is_stopped())
    end, ids)
    if #alive > 0 and waited < 5000 then
      waited = waited + 50
      if waited == 3000 then -- asked nicely for 3 s; now force it
        for _, id in ipairs(alive) do
          util.stop(vim.lsp.get_client_by_id(id), true)
        end
      end
      vim.defer_fn(start_when_stopped, 50)
      return
    end
    for _, bufnr in ipairs(buffers) do
      if api.nvim_buf_is_loaded(bufnr) then
        M.start(bufnr)
      end
    end
  end
  start_when_stopped()
end

-- Actions for user mappings (work in insert mode on the current buffer).
function M.accept()
  return suggestion.accept('all')
end
function M.accept_word()
  return suggestion.accept('word')
end
function M.accept_line()
  return suggestion.accept('line')
end
function M.dismiss()
  return suggestion.dismiss()
end
function M.next()
  return suggestion.cycle(1)
end
function M.prev()
  return suggestion.cycle(-1)
end
function M.request()
  return suggestion.request(nil, suggestion.INVOKED)
end
function M.is_visible()
  return suggestion.visible()
end

--- Explain the visual selection (from a mapping in visual mode), a given range, or the
--- code around the cursor.
function M.explain(range)
  actions.explain(range or actions.visual_range())
end

--- Fix via vim.lsp.buf.code_action (keeps a visual selection as the range).
function M.fix(range)
  actions.fix(range)
end

return M
