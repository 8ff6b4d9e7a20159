---@mod copilot_server.native Neovim 0.12+: let vim.lsp.inline_completion render and accept.
---
--- Used when `native = true` and the running Neovim has vim.lsp.inline_completion.
--- Neovim then sends the requests, draws the ghost text and runs the item's command;
--- this module only enables it for our client and maps the keys.

local api = vim.api
local config = require('copilot_server.config')

local M = {}

function M.available()
  local ic = vim.lsp.inline_completion
  return ic ~= nil and type(ic.enable) == 'function' and type(ic.get) == 'function'
end

--- Inserts only the first word / line of the shown item (the rest is dropped, as
--- Neovim's own accept replaces the whole item).
local function partial(item, take)
  local text = item.insert_text
  if type(text) ~= 'string' then
    return false
  end
  local part = take(text)
  local lines = vim.split(part, '\n', { plain = true })
  local pos = api.nvim_win_get_cursor(0)
  local row, col = pos[1] - 1, pos[2]
  if item.range then
    row, col = item.range.start.row, item.range.start.col
    local erow, ecol = item.range.end_.row, item.range.end_.col
    api.nvim_buf_set_text(0, row, col, erow, ecol, lines)
  else
    api.nvim_buf_set_text(0, row, col, row, col, lines)
  end
  api.nvim_win_set_cursor(0, { row + #lines, (#lines == 1 and col or 0) + #lines[#lines] })
  return true
end

local function first_word(text)
  return text:match('^%s*[%w_]+[^%w_%s]?') or text:match('^%s*[^%w_%s]+') or text
end

local function first_line(text)
  return text:match('^[^\n]*')
end

function M.attach(bufnr, client)
  vim.lsp.inline_completion.enable(true, { bufnr = bufnr, client_id = client.id })
  local ic = vim.lsp.inline_completion
  local keys = config.options.suggestion.keymap or {}
  local function map(lhs, fn, desc)
    if lhs then
      vim.keymap.set('i', lhs, fn, { buffer = bufnr, expr = true, desc = 'copilot-server: ' .. desc })
    end
  end
  local function accept_or(lhs, opts)
    return function()
      if ic.get(opts) then
        return ''
      end
      return lhs -- expr mappings replace key notation, so the key itself is typed
    end
  end
  map(keys.accept, accept_or(keys.accept or '', nil), 'accept suggestion')
  map(keys.accept_word, accept_or(keys.accept_word or '', {
    on_accept = function(item)
      partial(item, first_word)
    end,
  }), 'accept next word')
  map(keys.accept_line, accept_or(keys.accept_line or '', {
    on_accept = function(item)
      partial(item, first_line)
    end,
  }), 'accept next line')
  map(keys.next, function()
    ic.select({ count = 1 })
    return ''
  end, 'next suggestion')
  map(keys.prev, function()
    ic.select({ count = -1 })
    return ''
  end, 'previous suggestion')
end

return M
