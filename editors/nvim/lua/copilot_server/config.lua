---@mod copilot_server.config Defaults and the merged user configuration.

local M = {}

---@class copilot_server.Config
M.defaults = {
  -- How to start the server. The first element is looked up on $PATH.
  cmd = { 'copilot-server', '--stdio' },
  -- Filetypes the server starts for. nil (or { '*' }): every filetype of a buffer that is a
  -- real file, minus exclude_filetypes. A list: only those.
  filetypes = nil,
  -- Never started for these (commit messages and help are prose, not code). Prompt and
  -- other special buffers (buftype ~= '') are always left alone.
  exclude_filetypes = { 'help', 'gitcommit', 'gitrebase', 'hgcommit', 'svn', 'cvs' },
  -- Buffers larger than this (bytes) are not attached: a minified bundle or a data dump is
  -- no useful context, and syncing it costs more than any suggestion is worth.
  max_file_size = 1024 * 1024,
  -- Files or folders that mark a project root (the workspace the server indexes).
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod', 'Makefile' },
  -- The server's `copilotServer` settings (sent as initializationOptions and answered on
  -- workspace/configuration), e.g. { completion = { maxTokens = 64 }, model = { nGpuLayers = 'auto' } }.
  settings = {},
  -- Neovim 0.12+ only: let the built-in vim.lsp.inline_completion request, draw and accept
  -- instead of this plugin's ghost text (word / line accept drop the rest of the item;
  -- typing along a suggestion asks again).
  native = false,
  suggestion = {
    -- Ask for a suggestion while typing; false = only on the `request` key.
    auto_trigger = true,
    -- Wait this long after the last keystroke before asking: a local model is busy for
    -- seconds per request, so a burst of typing should cost one request, not one per key.
    debounce_ms = 150,
    -- Hide the ghost text while the insert-completion popup menu is open (the two would
    -- cover each other, and Tab then belongs to the menu).
    hide_during_completion = true,
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
  -- Next edit suggestions (the edit after the one just made, anywhere in the buffer),
  -- asked for after leaving insert mode and after normal-mode changes.
  next_edit = {
    enabled = true,
    auto_trigger = true,
    debounce_ms = 100,
    sign = '»', -- in the sign column of the edit's first line
    keymap = {
      accept = '<Tab>', -- normal mode: jump to the edit, then apply it (else Tab as before)
      dismiss = '<Esc>', -- any mode; false to keep Esc from dismissing
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
  for _, key in ipairs({ 'cmd', 'filetypes', 'exclude_filetypes', 'root_markers' }) do
    if user and user[key] ~= nil then
      M.options[key] = user[key]
    end
  end
  return M.options
end

return M
