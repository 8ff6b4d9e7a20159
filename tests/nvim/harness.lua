-- Runs one scenario from scenarios.lua inside a real headless Neovim, then quits.
--
-- Started by tests/test_nvim.py as
--   nvim --headless --clean --cmd 'set rtp^=editors/nvim' -c 'luafile tests/nvim/harness.lua'
-- with COPILOT_NVIM_SCENARIO, COPILOT_NVIM_OUT (a JSON file to write), COPILOT_NVIM_WORKDIR
-- and COPILOT_SERVER_CMD in the environment. The scenario runs as a coroutine driven by
-- timers, so typed keys go through Neovim's real main loop (mappings, autocmds, insert
-- mode) between steps. The scenario fills a result table; pytest makes the assertions.

local out_path = assert(os.getenv('COPILOT_NVIM_OUT'), 'COPILOT_NVIM_OUT not set')
local name = assert(os.getenv('COPILOT_NVIM_SCENARIO'), 'COPILOT_NVIM_SCENARIO not set')
local limit_ms = tonumber(os.getenv('COPILOT_NVIM_LIMIT_MS') or '') or 150000
local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'

local result = { scenario = name, messages = {} }
local finished = false

local function plain(value, depth)
  depth = depth or 0
  if value == vim.NIL then
    return value
  end
  local kind = type(value)
  if kind == 'table' and depth < 8 then
    local out = {}
    for k, v in pairs(value) do
      out[type(k) == 'number' and k or tostring(k)] = plain(v, depth + 1)
    end
    return out
  elseif kind == 'string' or kind == 'number' or kind == 'boolean' then
    return value
  end
  return value == nil and vim.NIL or tostring(value)
end

local function finish(err)
  if finished then
    return
  end
  finished = true
  result.ok = err == nil
  result.error = err
  local file = assert(io.open(out_path, 'w'))
  file:write(vim.json.encode(plain(result)))
  file:close()
  vim.cmd('qall!')
end

-- Notifications go into the result instead of the (absent) screen.
vim.notify = function(msg, level)
  table.insert(result.messages, { msg = tostring(msg), level = level or vim.log.levels.INFO })
end

local T = { result = result }
local co

local function resume()
  local ok, err = coroutine.resume(co)
  if not ok then
    finish(debug.traceback(co, err))
  elseif coroutine.status(co) == 'dead' then
    finish(nil)
  end
end

function T.sleep(ms)
  vim.defer_fn(resume, ms)
  coroutine.yield()
end

--- Polls cond() until it returns a truthy value (returned), or fails the scenario.
function T.wait(cond, timeout_ms, what)
  local deadline = vim.uv.now() + (timeout_ms or 60000)
  while true do
    local ok, value = pcall(cond)
    if ok and value then
      return value
    end
    if vim.uv.now() > deadline then
      error(('timed out after %d ms waiting for %s'):format(timeout_ms or 60000, what or 'a condition'), 2)
    end
    T.sleep(25)
  end
end

--- Types keys as a user would (mappings apply), then lets the main loop run them.
function T.feed(keys)
  vim.api.nvim_feedkeys(vim.keycode(keys), 'mt', false)
  T.sleep(60)
end

--- Types text literally (no key notation, no mappings), as a user typing characters.
function T.type(text)
  vim.api.nvim_feedkeys(text, 'nt', false)
  T.sleep(60)
end

--- The "(i/n)" counter shown after a suggestion with alternatives, or nil.
function T.counter(bufnr)
  local ns = require('copilot_server.suggestion').ns
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })) do
    local details = mark[4]
    local rows = { details.virt_text or {} }
    for _, line in ipairs(details.virt_lines or {}) do
      rows[#rows + 1] = line
    end
    for _, chunks in ipairs(rows) do
      for _, chunk in ipairs(chunks) do
        if chunk[2] == 'CopilotServerCount' then
          return vim.trim(chunk[1])
        end
      end
    end
  end
end

--- How many textDocument/inlineCompletion requests the plugin sent so far.
function T.inline_requests()
  local n = 0
  for _, q in ipairs(T.result.requests or {}) do
    if q.method == 'textDocument/inlineCompletion' then
      n = n + 1
    end
  end
  return n
end

--- The ghost text shown in a buffer: inline text, then one line per virtual line.
function T.ghost(bufnr)
  local ns = require('copilot_server.suggestion').ns
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local function text(chunks)
    local parts = {}
    for _, chunk in ipairs(chunks or {}) do
      if chunk[2] == 'CopilotServerSuggestion' then
        parts[#parts + 1] = chunk[1]
      end
    end
    return table.concat(parts)
  end
  local details = marks[1][4]
  local lines = { text(details.virt_text) }
  for _, chunk in ipairs(details.virt_lines or {}) do
    lines[#lines + 1] = text(chunk)
  end
  return table.concat(lines, '\n'), details, marks[1]
end

function T.lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, false)
end

function T.line()
  return vim.api.nvim_get_current_line()
end

--- Runs a server command and waits for its answer.
function T.execute(client, command, args)
  local done, answer = false, nil
  require('copilot_server.util').execute(client, command, args or {}, nil, function(err, res)
    done, answer = true, { err = err, result = res }
  end)
  T.wait(function()
    return done
  end, 30000, command)
  return answer
end

-- COPILOT_NVIM_SCENARIOS: another scenario file beside this one (next_edit_scenarios.lua).
local scenarios = dofile(here .. (os.getenv('COPILOT_NVIM_SCENARIOS') or 'scenarios.lua'))
local scenario = scenarios[name]
if not scenario then
  finish('unknown scenario ' .. name)
  return
end

vim.defer_fn(function()
  finish(('scenario did not finish within %d ms'):format(limit_ms))
end, limit_ms)

vim.schedule(function()
  co = coroutine.create(function()
    scenario(T, result)
  end)
  resume()
end)
