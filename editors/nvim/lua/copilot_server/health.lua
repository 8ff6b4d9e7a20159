--- :checkhealth copilot_server

local config = require('copilot_server.config')
local util = require('copilot_server.util')

local M = {}

local health = vim.health

local function run(cmd, timeout_ms)
  local ok, proc = pcall(vim.system, cmd, { text = true })
  if not ok then
    return nil, tostring(proc)
  end
  local result = proc:wait(timeout_ms)
  local out = vim.trim(result.stdout or '')
  if result.code ~= 0 and out == '' then
    return nil, vim.trim((result.stderr or '') .. ' (exit ' .. tostring(result.code) .. ')')
  end
  return out
end

local function report_status(status)
  local state = status.state or '?'
  local line = ('status: %s%s'):format(state, status.message and (' (' .. status.message .. ')') or '')
  if state == 'error' then
    health.error(line)
  elseif state == 'ready' or state == 'busy' then
    health.ok(line)
  else
    health.warn(line)
  end
  if status.model then
    health.ok(('model: %s (%s)'):format(status.modelName or '?', status.model))
  else
    health.warn('model: not loaded yet')
  end
  local layers = tonumber(status.gpuLayers) or 0
  if status.gpuOffloadSupported == false then
    health.info('GPU offload: not supported by this llama-cpp-python build (CPU only)')
  elseif layers > 0 then
    health.ok(('GPU offload: %d layers'):format(layers))
  else
    health.info('GPU offload: supported, 0 layers offloaded (model.nGpuLayers)')
  end
  health.info('completions: ' .. (status.enabled == false and 'off (:CopilotServer enable)' or 'on'))
end

local function check_running(clients)
  for _, client in ipairs(clients) do
    health.info(('client %d, root %s, position encoding %s'):format(
      client.id,
      client.root_dir or '?',
      client.offset_encoding
    ))
    local response = util.request_sync(client, 'workspace/executeCommand', {
      command = 'copilot.status',
      arguments = {},
    }, 5000)
    if response and response.result then
      report_status(response.result)
    else
      health.error('copilot.status did not answer: ' .. vim.inspect(response and response.err or 'timeout'))
    end
  end
end

--- Without a running server: ask the binary itself (`copilot-server doctor --json`).
local function check_offline(cmd)
  health.info('no copilot_server client is running; asking `' .. cmd[1] .. ' doctor`')
  local out, err = run({ cmd[1], 'doctor', '--json', '--skip-speed' }, 60000)
  if not out then
    health.warn('`doctor` failed: ' .. (err or '?'))
    return
  end
  local ok, report = pcall(vim.json.decode, out)
  if not ok or type(report) ~= 'table' then
    health.warn('`doctor` printed no JSON: ' .. out:sub(1, 200))
    return
  end
  if report.error then
    health.error('model: ' .. tostring(report.error))
  elseif type(report.model) == 'table' then
    health.ok(('model: %s (%s)'):format(tostring(report.model.name), tostring(report.model.path)))
  end
  if report.gpu_offload then
    health.ok(('GPU offload: supported, %s layers would be offloaded'):format(tostring(report.gpu_layers_offloaded)))
  else
    health.info('GPU offload: not supported by this llama-cpp-python build (CPU only)')
  end
end

function M.check()
  health.start('copilot_server')
  local v = vim.version()
  if vim.fn.has('nvim-0.10') == 1 then
    health.ok(('Neovim %d.%d.%d'):format(v.major, v.minor, v.patch))
  else
    health.error('Neovim 0.10 or newer is required')
  end
  local opts = config.options
  if opts.native then
    if require('copilot_server.native').available() then
      health.ok('rendering: native vim.lsp.inline_completion')
    else
      health.warn('native = true needs Neovim 0.12+; using the plugin\'s ghost text')
    end
  else
    health.ok('rendering: plugin ghost text')
  end

  local cmd = opts.cmd
  local path = vim.fn.exepath(cmd[1])
  if path == '' then
    health.error(('server binary %q not found'):format(cmd[1]), {
      'pip install copilot-server (or `make install` in its repository)',
      "set cmd = { '/path/to/.venv/bin/copilot-server', '--stdio' } in setup()",
    })
    return
  end
  local version = run({ path, '--version' }, 10000)
  health.ok(('server binary: %s (version %s)'):format(path, version or '?'))
  local only = type(opts.filetypes) == 'table' and not vim.list_contains(opts.filetypes, '*')
  health.info(('filetypes: %s; excluded: %s; files over %s are skipped'):format(
    only and table.concat(opts.filetypes, ', ') or 'every filetype of a file on disk',
    #(opts.exclude_filetypes or {}) > 0 and table.concat(opts.exclude_filetypes, ', ') or 'none',
    require('copilot_server.buffers').human_size(opts.max_file_size or 0)
  ))

  local clients = util.clients()
  if #clients > 0 then
    check_running(clients)
  else
    check_offline(cmd)
  end
end

return M
