import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { escapeMarkdown, menuItems, type StatusInputs, statusView } from '../src/statusView';

const READY = { state: 'ready', message: 'model loaded', modelName: 'qwen2.5-coder-0.5b', gpuLayers: 0, gpuOffloadSupported: false, enabled: true } as const;

function inputs(overrides: Partial<StatusInputs> = {}): StatusInputs {
  return { phase: 'running', server: READY, progress: [], languageId: 'python', enabled: true, languageDisabled: false, ...overrides };
}

describe('the status bar item', () => {
  test('ready: the model and GPU offload in the tooltip, click for the menu', () => {
    const view = statusView(inputs());
    assert.equal(view.text, '$(sparkle) Copilot');
    assert.equal(view.command, 'copilotServer.showMenu');
    assert.equal(view.background, undefined);
    assert.match(view.tooltip, /ready/);
    assert.match(view.tooltip, /qwen2\\\.5\\-coder\\-0\\\.5b/);
    assert.match(view.tooltip, /no GPU offload/);
  });

  test('starting and loading spin', () => {
    assert.equal(statusView(inputs({ phase: 'starting', server: undefined })).text, '$(loading~spin) Copilot');
    assert.equal(statusView(inputs({ server: undefined })).text, '$(loading~spin) Copilot');
    const loading = statusView(inputs({ server: { state: 'loading', message: 'loading model' } }));
    assert.equal(loading.text, '$(loading~spin) Copilot');
    assert.match(loading.tooltip, /loading the model/);
  });

  test('busy spins too', () => {
    assert.equal(statusView(inputs({ server: { ...READY, state: 'busy' } })).text, '$(loading~spin) Copilot');
  });

  test('$/progress shows its title and percentage', () => {
    const view = statusView(inputs({ progress: [{ title: 'Explaining', percentage: 40.4, message: '16 tokens' }] }));
    assert.equal(view.text, '$(loading~spin) Copilot: Explaining 40%');
    assert.match(view.tooltip, /16 tokens/);
  });

  test('errors are red and a click opens the log', () => {
    const server = statusView(inputs({ server: { state: 'error', message: 'cannot load model /m.gguf' } }));
    assert.equal(server.background, 'error');
    assert.equal(server.command, 'copilotServer.showLog');
    assert.match(server.tooltip, /cannot load model/);
    const start = statusView(inputs({ phase: 'failed', failure: 'copilot-server was not found' }));
    assert.equal(start.text, '$(error) Copilot');
    assert.equal(start.command, 'copilotServer.showLog');
    assert.match(start.tooltip, /not found/);
  });

  test('an error outranks progress', () => {
    const view = statusView(inputs({ server: { state: 'error', message: 'x' }, progress: [{ title: 'Explaining' }] }));
    assert.equal(view.background, 'error');
  });

  test('stopped is a warning', () => {
    const view = statusView(inputs({ phase: 'stopped' }));
    assert.equal(view.text, '$(debug-disconnect) Copilot');
    assert.equal(view.background, 'warning');
  });

  test('disabled everywhere, by the server, or for this language', () => {
    assert.equal(statusView(inputs({ enabled: false })).text, '$(circle-slash) Copilot');
    assert.equal(statusView(inputs({ server: { ...READY, state: 'disabled' } })).text, '$(circle-slash) Copilot');
    const language = statusView(inputs({ languageDisabled: true }));
    assert.equal(language.text, '$(circle-slash) Copilot');
    assert.match(language.tooltip, /disabled for python/);
  });

  test('server text cannot inject Markdown links or HTML', () => {
    assert.equal(escapeMarkdown('[x](command:evil) <b>'), '\\[x\\]\\(command:evil\\) \\<b\\>');
  });
});

describe('the status menu', () => {
  test('offers the opposite of the current state, per language too', () => {
    const on = menuItems(inputs()).map((item) => item.command);
    assert.deepEqual(on, ['copilotServer.disable', 'copilotServer.toggleLanguage', 'copilotServer.showLog', 'copilotServer.restart', 'copilotServer.openSettings']);
    const off = menuItems(inputs({ enabled: false, languageDisabled: true }));
    assert.equal(off[0].command, 'copilotServer.enable');
    assert.match(off[1].label, /Enable completions for python/);
  });

  test('without an editor there is no language entry; stopped offers start', () => {
    const items = menuItems(inputs({ languageId: undefined, phase: 'stopped' }));
    assert.ok(!items.some((item) => item.command === 'copilotServer.toggleLanguage'));
    assert.ok(items.some((item) => item.label.includes('Start server')));
  });
});
