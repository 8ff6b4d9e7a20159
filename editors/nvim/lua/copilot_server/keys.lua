---@mod copilot_server.keys What a key means when no suggestion takes it.
---
--- Decided when the key is pressed, not when the buffer was attached: a completion or
--- snippet plugin that maps Tab later (lazy-loaded) must still get Tab. The order is a
--- buffer-local mapping our own replaced at attach, then the global mapping the key has
--- now, then the key itself.

local api = vim.api

local M = {}

local PREFIX = 'copilot-server:'

local function ours(map)
  return type(map.desc) == 'string' and vim.startswith(map.desc, PREFIX)
end

local function same_key(a, b)
  return vim.keycode(a) == vim.keycode(b)
end

--- The buffer-local insert-mode mapping of `lhs` that is not ours (recorded at attach,
--- before ours replaces it), or nil.
function M.buffer_mapping(bufnr, lhs)
  for _, map in ipairs(api.nvim_buf_get_keymap(bufnr, 'i')) do
    if same_key(map.lhs, lhs) and not ours(map) then
      return map
    end
  end
end

--- The global insert-mode mapping of `lhs` as it is now, or nil.
function M.global_mapping(lhs)
  for _, map in ipairs(api.nvim_get_keymap('i')) do
    if same_key(map.lhs, lhs) and not ours(map) then
      return map
    end
  end
end

--- Runs `map` (a mapping as nvim_get_keymap describes it) as if `lhs` was typed.
local function run(lhs, map)
  if map.callback then
    local keys = map.callback()
    if map.expr == 1 and type(keys) == 'string' and keys ~= '' then
      if map.replace_keycodes == 1 then
        keys = vim.keycode(keys)
      end
      api.nvim_feedkeys(keys, map.noremap == 1 and 'in' or 'im', false)
    end
    return
  end
  local rhs = map.rhs or ''
  if rhs == '' then
    return
  end
  local keys = map.expr == 1 and vim.fn.eval(rhs) or vim.keycode(rhs)
  -- A rhs that contains its own lhs would come back to us: feed it without remapping.
  local recursive = rhs:lower():find(lhs:lower(), 1, true) ~= nil
  api.nvim_feedkeys(keys, (map.noremap == 1 or recursive) and 'in' or 'im', false)
end

--- Does what `lhs` means now when no suggestion takes it. `replaced`: the buffer-local
--- mapping ours replaced at attach, if any.
function M.fallback(lhs, replaced)
  local map = replaced or M.global_mapping(lhs)
  if map then
    run(lhs, map)
  else
    api.nvim_feedkeys(vim.keycode(lhs), 'in', false)
  end
end

M.PREFIX = PREFIX

return M
