---@mod copilot_server A local code copilot for Neovim: ghost text, Explain and Fix.
---
--- require('copilot_server').setup({}) starts `copilot-server --stdio` (vim.lsp.start) for
--- the configured filetypes and shows its inline completions as ghost text.

local api = vim.api
local actions = require('copilot_server.actions')
local buffers = require('copilot_server.buffers')
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

--- One server for the whole session: a buffer under another root joins the running client
--- as a workspace folder (workspace/didChangeWorkspaceFolders) instead of starting another
--- server per project root.
local function reuse_client(client, conf)
  local stopped
  if vim.fn.has('nvim-0.11') == 1 then
    stopped = client:is_stopped()
  else
    stopped = client.is_stopped()
  end
  if client.name ~= conf.name or stopped then
    return false
  end
  local root = conf.root_dir
  if root then
    for _, folder in ipairs(client.workspace_folders or {}) do
      if vim.uri_to_fname(folder.uri) == root then
        return true
      end
    end
    local added = { uri = vim.uri_from_fname(root), name = root }
    util.notify(client, 'workspace/didChangeWorkspaceFolders', { event = { added = { added }, removed = {} } })
    client.workspace_folders = client.workspace_folders or {}
    table.insert(client.workspace_folders, added)
  end
  return true
end

--- Starts (or reuses) the server for a buffer. Returns the client id, or nil.
---@param bufnr integer|nil
function M.start(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  if not buffers.attachable(bufnr) then
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
  }, { bufnr = bufnr, reuse_client = reuse_client })
end

local function on_attach(bufnr, client)
  if use_native() then
    require('copilot_server.native').attach(bufnr, client)
  else
    suggestion.attach(bufnr)
  end
  require('copilot_server.next_edit').attach(bufnr)
end

local function set_highlights()
  api.nvim_set_hl(0, 'CopilotServerSuggestion', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'CopilotServerCount', { link = 'NonText', default = true })
  require('copilot_server.next_edit').set_highlights()
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
    nargs = '*',
    range = true,
    desc = 'copilot-server: status|enable|disable|toggle|restart|explain|fix',
    complete = function(lead, line)
      local words = vim.split(vim.trim(line), '%s+')
      local choices = { 'status', 'enable', 'disable', 'toggle', 'restart', 'explain', 'fix' }
      local typing_second = #words > 2 or (#words == 2 and line:match('%s$'))
      if typing_second and (words[2] == 'enable' or words[2] == 'disable') then
        choices = { 'buffer', 'filetype' }
        if words[3] == 'filetype' then
          choices = vim.fn.getcompletion('', 'filetype')
        end
      elseif typing_second then
        choices = {}
      end
      return vim.tbl_filter(function(s)
        return vim.startswith(s, lead)
      end, choices)
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
  enable = function(cmd)
    M.switch(true, cmd.fargs and cmd.fargs[2], cmd.fargs and cmd.fargs[3])
  end,
  disable = function(cmd)
    M.switch(false, cmd.fargs and cmd.fargs[2], cmd.fargs and cmd.fargs[3])
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

--- What the current buffer gets, and the buffers left out for their size.
local function describe_buffers()
  local bufnr = api.nvim_get_current_buf()
  local lines = {}
  local attached = util.client(bufnr) ~= nil
  local on, why = buffers.enabled(bufnr)
  if not attached then
    local _, reason = buffers.attachable(bufnr)
    lines[#lines + 1] = 'this buffer: not attached' .. (reason and (' (' .. reason .. ')') or '')
  elseif not on then
    lines[#lines + 1] = 'this buffer: suggestions off (' .. (why or '?') .. ')'
  else
    lines[#lines + 1] = 'this buffer: suggestions on'
  end
  for other, bytes in pairs(buffers.too_large) do
    if api.nvim_buf_is_valid(other) then
      local name = vim.fn.fnamemodify(api.nvim_buf_get_name(other), ':t')
      lines[#lines + 1] = ('skipped: %s (%s, larger than max_file_size %s)'):format(
        name,
        buffers.human_size(bytes),
        buffers.human_size(config.options.max_file_size)
      )
    end
  end
  return table.concat(lines, '\n')
end
M._describe_buffers = describe_buffers

function M.print_status()
  local clients = util.clients()
  local here = describe_buffers()
  if #clients == 0 then
    util.info('not running (open a file of a configured filetype, or :CopilotServer restart)\n' .. here)
    return
  end
  M.query_status(function(client, err, result)
    if err or type(result) ~= 'table' then
      util.warn(('client %d: copilot.status failed: %s'):format(client.id, err and err.message or 'no result'))
      return
    end
    util.info(describe(result) .. '\n' .. here)
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

--- `:CopilotServer enable|disable [buffer | filetype [{ft}]]`: everywhere (through the
--- server), for the current buffer, or for a filetype (default: the current buffer's).
function M.switch(on, scope, ft)
  local bufnr = api.nvim_get_current_buf()
  local touched = {}
  if scope == nil or scope == '' then
    return M.set_enabled(on)
  elseif scope == 'buffer' then
    buffers.set_buffer(bufnr, on)
    touched = { bufnr }
  elseif scope == 'filetype' then
    ft = (ft and ft ~= '') and ft or vim.bo[bufnr].filetype
    if ft == '' then
      util.warn('this buffer has no filetype; name one: :CopilotServer ' .. (on and 'enable' or 'disable') .. ' filetype {ft}')
      return
    end
    buffers.set_filetype(ft, on)
    for _, b in ipairs(api.nvim_list_bufs()) do
      if api.nvim_buf_is_loaded(b) and vim.bo[b].filetype == ft then
        touched[#touched + 1] = b
      end
    end
  else
    util.warn(('unknown scope %q (buffer, filetype)'):format(scope))
    return
  end
  for _, b in ipairs(touched) do
    if on then
      M.start(b) -- a buffer switched on that had no server yet gets one
    else
      suggestion.clear(b)
    end
  end
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
