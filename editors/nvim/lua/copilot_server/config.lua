---@mod copilot_server.config Defaults and the merged user configuration.

local M = {}

---@class copilot_server.Config
M.defaults = {
  -- How to start the server. The first element is looked up on $PATH.
  cmd = { 'copilot-server', '--stdio' },
  -- Filetypes the server starts for; { '*' } means every normal file buffer.
  filetypes = {
    'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
    'go', 'rust', 'java', 'c', 'cpp', 'lua', 'ruby', 'sh',
  },
  -- Files or folders that mark a project root (the workspace the server indexes).
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod', 'Makefile' },
  -- The server's `copilotServer` settings (sent as initializationOptions and answered on
  -- workspace/configuration), e.g. { completion = { maxTokens = 64 }, model = { nGpuLayers = 'auto' } }.
  settings = {},
  -- Neovim 0.12+ only: use the built-in vim.lsp.inline_completion for rendering instead of
  -- this plugin's ghost text (accept word / line and dismiss are then not available).
  native = false,
  suggestion = {
    -- Ask for a suggestion while typing; false = only on the `request` key.
    auto_trigger = true,
    -- Wait this long after the last keystroke before asking: a local model is busy for
    -- seconds per request, so a burst of typing should cost one request, not one per key.
    debounce_ms = 150,
    -- Insert-mode keys; set one to false to leave it unmapped. They mirror copilot.vim.
    keymap = {
      accept = '<Tab>', -- only while a suggestion is shown; otherwise Tab works as before
      accept_word = '<M-Right>',
      accept_line = '<M-C-Right>',
      next = '<M-]>',
      prev = '<M-[>',
      dismiss = '<C-]>',
      request = '<M-\\>',
    },
  },
  explain = {
    border = 'rounded',
    max_width = 80,
    max_height = 30,
    -- Move the cursor into the float so it can be scrolled; `q` closes it.
    enter = false,
  },
}

---@type copilot_server.Config
M.options = vim.deepcopy(M.defaults)

---@param user table|nil
function M.set(user)
  M.options = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), user or {})
  -- A list given by the user replaces the default list instead of being merged into it.
  for _, key in ipairs({ 'cmd', 'filetypes', 'root_markers' }) do
    if user and user[key] ~= nil then
      M.options[key] = user[key]
    end
  end
  return M.options
end

return M
