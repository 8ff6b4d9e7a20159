import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { escapeMarkdown, ICON, menuItems, NAME, type StatusInputs, statusView } from '../src/statusView';

const READY = { state: 'ready', message: 'model loaded', modelName: 'qwen2.5-coder-0.5b', gpuLayers: 0, gpuOffloadSupported: false, enabled: true } as const;

function inputs(overrides: Partial<StatusInputs> = {}): StatusInputs {
  return { phase: 'running', server: READY, progress: [], languageId: 'python', enabled: true, languageDisabled: false, ...overrides };
}

describe('the status bar item', () => {
  test('the product\'s own name and icon, not "Copilot" (GitHub Copilot\'s item is next to it)', () => {
    assert.equal(NAME, 'copilot-server');
    assert.equal(ICON, '$(copilot-server-logo)');
    for (const view of [statusView(inputs()), statusView(inputs({ phase: 'failed' })), statusView(inputs({ enabled: false }))]) {
      assert.doesNotMatch(view.text, /(^|\s)Copilot$/);
      assert.ok(view.text.endsWith(NAME));
    }
  });

  test('snoozed: a clock until the snooze ends; manual mode says so', () => {
    const snoozed = statusView(inputs({ snoozedUntil: new Date(2030, 0, 1, 14, 35).getTime() }));
    assert.equal(snoozed.text, `$(clock) ${NAME}`);
    assert.match(snoozed.tooltip, /snoozed until 14:35/);
    assert.match(statusView(inputs({ triggerMode: 'manual' })).tooltip, /only on Alt/);
  });

  test('ready: the model and GPU offload in the tooltip, click for the menu', () => {
    const view = statusView(inputs());
    assert.equal(view.text, `${ICON} ${NAME}`);
    assert.equal(view.command, 'copilotServer.showMenu');
    assert.equal(view.background, undefined);
    assert.match(view.tooltip, /ready/);
    assert.match(view.tooltip, /qwen2\\\.5\\-coder\\-0\\\.5b/);
    assert.match(view.tooltip, /no GPU offload/);
  });

  test('starting and loading spin', () => {
    assert.equal(statusView(inputs({ phase: 'starting', server: undefined })).text, `$(loading~spin) ${NAME}`);
    assert.equal(statusView(inputs({ server: undefined })).text, `$(loading~spin) ${NAME}`);
    const loading = statusView(inputs({ server: { state: 'loading', message: 'loading model' } }));
    assert.equal(loading.text, `$(loading~spin) ${NAME}`);
    assert.match(loading.tooltip, /loading the model/);
  });

  test('busy spins too', () => {
    assert.equal(statusView(inputs({ server: { ...READY, state: 'busy' } })).text, `$(loading~spin) ${NAME}`);
  });

  test('$/progress shows its title and percentage', () => {
    const view = statusView(inputs({ progress: [{ title: 'Explaining', percentage: 40.4, message: '16 tokens' }] }));
    assert.equal(view.text, `$(loading~spin) ${NAME}: Explaining 40%`);
    assert.match(view.tooltip, /16 tokens/);
  });

  test('errors are red and a click opens the log', () => {
    const server = statusView(inputs({ server: { state: 'error', message: 'cannot load model /m.gguf' } }));
    assert.equal(server.background, 'error');
    assert.equal(server.command, 'copilotServer.showLog');
    assert.match(server.tooltip, /cannot load model/);
    const start = statusView(inputs({ phase: 'failed', failure: 'copilot-server was not found' }));
    assert.equal(start.text, `$(error) ${NAME}`);
    assert.equal(start.command, 'copilotServer.showLog');
    assert.match(start.tooltip, /not found/);
  });

  test('an error outranks progress', () => {
    const view = statusView(inputs({ server: { state: 'error', message: 'x' }, progress: [{ title: 'Explaining' }] }));
    assert.equal(view.background, 'error');
  });

  test('stopped is a warning', () => {
    const view = statusView(inputs({ phase: 'stopped' }));
    assert.equal(view.text, `$(debug-disconnect) ${NAME}`);
    assert.equal(view.background, 'warning');
  });

  test('disabled everywhere, by the server, or for this language', () => {
    assert.equal(statusView(inputs({ enabled: false })).text, `$(circle-slash) ${NAME}`);
    assert.equal(statusView(inputs({ server: { ...READY, state: 'disabled' } })).text, `$(circle-slash) ${NAME}`);
    const language = statusView(inputs({ languageDisabled: true }));
    assert.equal(language.text, `$(circle-slash) ${NAME}`);
    assert.match(language.tooltip, /disabled for python/);
  });

  test('server text cannot inject Markdown links or HTML', () => {
    assert.equal(escapeMarkdown('[x](command:evil) <b>'), '\\[x\\]\\(command:evil\\) \\<b\\>');
  });
});

describe('the status menu', () => {
  test('snooze for 5, 30 or 60 minutes, or resume a snooze', () => {
    const snoozes = menuItems(inputs({ snoozeMinutes: [5, 30, 60] })).filter((item) => item.command === 'copilotServer.snooze');
    assert.deepEqual(snoozes.map((item) => item.args), [[5], [30], [60]]);
    const snoozed = menuItems(inputs({ snoozeMinutes: [5, 30, 60], snoozedUntil: Date.now() + 60_000 }));
    assert.ok(!snoozed.some((item) => item.command === 'copilotServer.snooze'));
    assert.ok(snoozed.some((item) => item.command === 'copilotServer.resume'));
  });

  test('switch between suggestions while typing and only on Alt+\\', () => {
    const automatic = menuItems(inputs()).find((item) => item.command === 'copilotServer.toggleTriggerMode');
    assert.match(automatic?.label ?? '', /only on Alt/);
    const manual = menuItems(inputs({ triggerMode: 'manual' })).find((item) => item.command === 'copilotServer.toggleTriggerMode');
    assert.match(manual?.label ?? '', /while typing/);
  });

  test('offers the opposite of the current state, per language too', () => {
    const on = menuItems(inputs()).map((item) => item.command);
    assert.deepEqual(on, [
      'copilotServer.disable',
      'copilotServer.toggleLanguage',
      'copilotServer.toggleTriggerMode',
      'copilotServer.showLog',
      'copilotServer.restart',
      'copilotServer.openSettings',
    ]);
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
