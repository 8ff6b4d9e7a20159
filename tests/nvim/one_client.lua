-- Two project roots in one Neovim session: one copilot-server client, the second root added
-- to it as a workspace folder. Started by tests/test_shared_engine.py as
--   nvim --headless --clean --cmd 'set rtp^=editors/nvim' -c 'luafile tests/nvim/one_client.lua'
-- with COPILOT_SERVER_CMD, COPILOT_NVIM_ROOTS (two folders, ':'-separated, each with a .git
-- marker and a main.py) and COPILOT_NVIM_OUT (the JSON file to write) in the environment.

local out_path = assert(os.getenv('COPILOT_NVIM_OUT'))
local roots = vim.split(assert(os.getenv('COPILOT_NVIM_ROOTS')), ':', { plain = true })
local result = { clients = {}, folders = {}, server_folders = {} }

local function finish(err)
  result.ok = err == nil
  result.error = err
  local file = assert(io.open(out_path, 'w'))
  file:write(vim.json.encode(result))
  file:close()
  vim.cmd('qall!')
end

local ok, err = pcall(function()
  require('copilot_server').setup({ cmd = { assert(os.getenv('COPILOT_SERVER_CMD')), '--stdio' } })
  local function ours()
    return vim.lsp.get_clients({ name = 'copilot_server' })
  end
  for _, root in ipairs(roots) do
    vim.cmd.edit(vim.fn.fnameescape(root .. '/main.py'))
    local buf = vim.api.nvim_get_current_buf()
    assert(
      vim.wait(60000, function()
        return #vim.lsp.get_clients({ bufnr = buf, name = 'copilot_server' }) > 0
      end, 50),
      'no client attached to ' .. root
    )
  end
  local clients = ours()
  for _, client in ipairs(clients) do
    table.insert(result.clients, client.id)
  end
  for _, folder in ipairs(clients[1].workspace_folders or {}) do
    table.insert(result.folders, vim.uri_to_fname(folder.uri))
  end
  -- What the server itself serves: its index follows didChangeWorkspaceFolders.
  local client = clients[1]
  vim.wait(30000, function()
    local reply = client:request_sync(
      'workspace/executeCommand',
      { command = 'copilot.status', arguments = {} },
      10000,
      vim.api.nvim_get_current_buf()
    )
    local status = reply and reply.result
    result.server_folders = status and status.index and status.index.folders or {}
    return #result.server_folders >= #roots
  end, 200)
end)
finish(not ok and tostring(err) or nil)
