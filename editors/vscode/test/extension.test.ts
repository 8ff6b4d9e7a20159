/** The extension's wiring against the vscode stub: commands, settings, status bar, panel. */

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';

import type * as vscode from 'vscode';

import { explanationFooter, explanationHtml, ExplanationPanel, explanationTitle, isExplanation } from '../src/explanation';
import { activate, type Api, deactivate } from '../src/extension';
import { quickFixes } from '../src/fix';
import { ICON, NAME } from '../src/statusView';
import { InlineCompletionTriggerKind, stub } from './stub/vscode';

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  contributes: { commands: { command: string }[] };
};

const READY = { state: 'ready', message: 'model loaded', modelName: 'qwen', gpuLayers: 0, enabled: true } as const;
const SHOWN_READY = `${ICON} ${NAME}`;
const SHOWN_OFF = `$(circle-slash) ${NAME}`;

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let context: { subscriptions: { dispose(): unknown }[] };
let api: Api;

async function start(): Promise<void> {
  context = { subscriptions: [] };
  api = activate(context as unknown as vscode.ExtensionContext);
  // activate() starts the server without waiting; let that attempt finish.
  await api.controller.start();
}

async function stop(): Promise<void> {
  await deactivate();
  for (const item of context.subscriptions) {
    item.dispose();
  }
}

async function commandRun(id: string): Promise<unknown> {
  return await (require('vscode') as typeof vscode).commands.executeCommand(id);
}

describe('activation without a server', () => {
  beforeEach(async () => {
    stub.reset();
    stub.setSetting('copilotServer.serverPath', '/nonexistent/copilot-server');
    await start();
  });
  afterEach(stop);

  test('registers exactly the contributed commands', () => {
    const contributed = manifest.contributes.commands.map((c) => c.command).sort();
    const registered = stub.registeredCommands().filter((id) => id.startsWith('copilotServer.')).sort();
    assert.deepEqual(registered, contributed);
  });

  test('a missing server is an error in the status bar, the log and a message with a way out', () => {
    const item = stub.statusBarItems[0];
    assert.equal(item.text, `$(error) ${NAME}`);
    assert.equal(item.command, 'copilotServer.showLog');
    assert.equal(item.backgroundColor?.id, 'statusBarItem.errorBackground');
    assert.ok(item.visible);
    const error = stub.messages.find((m) => m.kind === 'error');
    assert.match(error?.text ?? '', /serverPath.*\/nonexistent\/copilot-server/);
    assert.deepEqual(error?.items, ['Open Settings', 'Show Log']);
    assert.ok(stub.outputChannels[0].lines.some((line) => line.includes('/nonexistent/copilot-server')));
  });

  test('Show Log opens the output channel', async () => {
    await commandRun('copilotServer.showLog');
    assert.equal(stub.outputChannels[0].shown, 1);
  });

  test('commands that need the server say that it is not running', async () => {
    await commandRun('copilotServer.explain');
    assert.ok(stub.messages.some((m) => m.kind === 'warning' && /not running/.test(m.text)));
  });

  test('changing copilotServer.serverPath restarts the server', async () => {
    const tries = () => stub.outputChannels[0].lines.filter((line) => line.includes('restarting the server')).length;
    assert.equal(tries(), 0);
    stub.setSetting('copilotServer.serverPath', '/elsewhere/copilot-server');
    // Nothing here starts it: the settings listener must.
    await until('a restart with the new path', () => stub.messages.some((m) => /\/elsewhere\/copilot-server/.test(m.text)));
    assert.equal(tries(), 1);
  });

  test('a project setting is pushed, not a restart', async () => {
    stub.setSetting('copilotServer.completion.maxTokens', 12);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(!stub.outputChannels[0].lines.some((line) => line.includes('restarting the server')));
  });
});

describe('suggestion modes', () => {
  type Middleware = NonNullable<ReturnType<Api['controller']['clientOptions']>['middleware']>;
  let provide: NonNullable<Middleware['provideInlineCompletionItems']>;
  let asked: number[];

  /** What the middleware lets through to the server, for a request of this kind. */
  async function request(kind: InlineCompletionTriggerKind): Promise<boolean> {
    const before = asked.length;
    const document = { uri: { scheme: 'file', toString: () => 'file:///a.py' }, languageId: 'python' };
    await provide(document as never, {} as never, { triggerKind: kind } as never, {} as never, (async () => {
      asked.push(kind);
      return [];
    }) as never);
    return asked.length > before;
  }

  beforeEach(async () => {
    stub.reset();
    stub.setSetting('copilotServer.serverPath', '/nonexistent/copilot-server');
    await start();
    api.status.setPhase('running');
    api.status.setServer(READY);
    provide = api.controller.clientOptions().middleware!.provideInlineCompletionItems!;
    asked = [];
  });
  afterEach(stop);

  test('automatic by default: typing and Alt+\\ both ask', async () => {
    assert.equal(await request(InlineCompletionTriggerKind.Automatic), true);
    assert.equal(await request(InlineCompletionTriggerKind.Invoke), true);
  });

  test('manual mode (from the status menu): only Alt+\\ asks', async () => {
    stub.pickQuickPick = (items) => items.find((item) => (item as { command?: string }).command === 'copilotServer.toggleTriggerMode');
    await commandRun('copilotServer.showMenu');
    assert.deepEqual(stub.updates.at(-1), { key: 'copilotServer.triggerMode', value: 'manual', target: 1 });
    assert.equal(await request(InlineCompletionTriggerKind.Automatic), false);
    assert.equal(await request(InlineCompletionTriggerKind.Invoke), true);
    assert.match(String((stub.statusBarItems[0].tooltip as { value: string }).value), /only on Alt/);
  });

  test('snooze for 30 minutes from the status menu, then resume', async () => {
    stub.pickQuickPick = (items) => items.find((item) => (item as { label: string }).label.includes('Snooze for 30 minutes'));
    const started = Date.now();
    await commandRun('copilotServer.showMenu');
    assert.deepEqual(
      stub.quickPicks[0].filter((label) => label.includes('Snooze')),
      ['$(clock) Snooze for 5 minutes', '$(clock) Snooze for 30 minutes', '$(clock) Snooze for 60 minutes'],
    );
    const until = api.modes.snoozedUntil!;
    assert.ok(until >= started + 30 * 60_000 && until <= Date.now() + 30 * 60_000);
    assert.equal(api.status.shown.text, `$(clock) ${NAME}`);
    assert.equal(await request(InlineCompletionTriggerKind.Automatic), false);
    assert.equal(await request(InlineCompletionTriggerKind.Invoke), true, 'Alt+\\ still asks while snoozed');

    stub.pickQuickPick = (items) => items.find((item) => (item as { command?: string }).command === 'copilotServer.resume');
    await commandRun('copilotServer.showMenu');
    assert.equal(api.modes.snoozedUntil, undefined);
    assert.equal(api.status.shown.text, SHOWN_READY);
    assert.equal(await request(InlineCompletionTriggerKind.Automatic), true);
  });

  test('a snooze ends by itself', async () => {
    api.modes.snooze(0.001); // 60 ms
    assert.equal(api.status.shown.text, `$(clock) ${NAME}`);
    await until('the snooze to end', () => api.status.shown.text === SHOWN_READY, 2000);
    assert.equal(await request(InlineCompletionTriggerKind.Automatic), true);
  });

  test('disable for the current language from the status menu', async () => {
    stub.setActiveEditor('python');
    stub.pickQuickPick = (items) => items.find((item) => (item as { command?: string }).command === 'copilotServer.toggleLanguage');
    await commandRun('copilotServer.showMenu');
    assert.deepEqual(stub.updates.at(-1), { key: 'copilotServer.completion.disabledLanguages', value: ['python'], target: 1 });
    assert.equal(api.status.shown.text, SHOWN_OFF);
  });
});

describe('machine settings', () => {
  beforeEach(async () => {
    stub.reset();
    stub.setSetting('copilotServer.serverPath', '/nonexistent/copilot-server');
    await start();
  });
  afterEach(stop);

  test('model and engine settings go in initializationOptions only, never as the project\'s settings', async () => {
    stub.setSetting('copilotServer.model.path', '/models/mine.gguf');
    stub.setSetting('copilotServer.engine.url', 'http://127.0.0.1:8080');
    stub.setSetting('copilotServer.engine.timeoutS', 5);
    stub.setSetting('copilotServer.completion.maxTokens', 32);
    const options = api.controller.clientOptions();
    const init = (options.initializationOptions as () => Record<string, unknown>)();
    assert.deepEqual(init, {
      model: { path: '/models/mine.gguf' },
      engine: { url: 'http://127.0.0.1:8080', timeoutS: 5 },
      completion: { maxTokens: 32 },
    });
    const configuration = options.middleware!.workspace!.configuration!;
    const answer = await configuration(
      { items: [{ section: 'copilotServer' }] },
      { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) },
      async () => [],
    );
    assert.deepEqual(answer, [{ engine: { timeoutS: 5 }, completion: { maxTokens: 32 } }]);
  });
});

describe('enable / disable', () => {
  beforeEach(async () => {
    stub.reset();
    stub.setSetting('copilotServer.serverPath', '/nonexistent/copilot-server');
    await start();
    // Pretend the server came up, so the item shows the completion state.
    api.status.setPhase('running');
    api.status.setServer(READY);
  });
  afterEach(stop);

  test('disable and enable write the user setting and update the status bar', async () => {
    assert.equal(api.status.shown.text, SHOWN_READY);
    await commandRun('copilotServer.disable');
    assert.deepEqual(stub.updates.at(-1), { key: 'copilotServer.completion.enabled', value: false, target: 1 });
    assert.equal(api.status.shown.text, SHOWN_OFF);
    await commandRun('copilotServer.toggle');
    assert.deepEqual(stub.updates.at(-1), { key: 'copilotServer.completion.enabled', value: true, target: 1 });
    assert.equal(api.status.shown.text, SHOWN_READY);
  });

  test('a workspace that set the value gets the change, not the user settings', async () => {
    stub.setSetting('copilotServer.completion.enabled', true, 'workspace');
    await commandRun('copilotServer.toggle');
    assert.deepEqual(stub.updates.at(-1), { key: 'copilotServer.completion.enabled', value: false, target: 2 });
  });

  test('per language: the active editor\'s language goes into disabledLanguages and back', async () => {
    stub.setActiveEditor('python');
    await commandRun('copilotServer.toggleLanguage');
    assert.deepEqual(stub.updates.at(-1)?.value, ['python']);
    assert.equal(api.status.shown.text, SHOWN_OFF);
    stub.setActiveEditor('rust');
    assert.equal(api.status.shown.text, SHOWN_READY, 'another language is still on');
    stub.setActiveEditor('python');
    await commandRun('copilotServer.toggleLanguage');
    assert.deepEqual(stub.updates.at(-1)?.value, []);
  });

  test('the status bar click menu runs what is picked', async () => {
    stub.setActiveEditor('python');
    stub.pickQuickPick = (items) => items.find((item) => (item as { command?: string }).command === 'copilotServer.disable');
    await commandRun('copilotServer.showMenu');
    assert.match(stub.quickPicks[0][0], /Disable completions/);
    assert.match(stub.quickPicks[0][1], /for python/);
    assert.deepEqual(stub.updates.at(-1), { key: 'copilotServer.completion.enabled', value: false, target: 1 });
  });

  test('$/progress from the server shows in the status bar until it ends', () => {
    const options = api.controller.clientOptions();
    const forwarded: unknown[] = [];
    const progress = options.middleware!.handleWorkDoneProgress!;
    progress('t1', { kind: 'begin', title: 'Explaining', percentage: 0 }, (_token, params) => forwarded.push(params));
    progress('t1', { kind: 'report', percentage: 50 }, (_token, params) => forwarded.push(params));
    assert.equal(api.status.shown.text, `$(loading~spin) ${NAME}: Explaining 50%`);
    progress('t1', { kind: 'end' }, (_token, params) => forwarded.push(params));
    assert.equal(api.status.shown.text, SHOWN_READY);
    assert.equal(forwarded.length, 3, 'VS Code\'s own progress display still gets every value');
  });

  test('the server\'s workspace/configuration pull gets the server\'s settings only', async () => {
    stub.setSetting('copilotServer.completion.maxTokens', 32);
    stub.setSetting('copilotServer.model.nGpuLayers', '8');
    const configuration = api.controller.clientOptions().middleware!.workspace!.configuration!;
    const next = async () => ['from VS Code', 'from VS Code'];
    const answer = await configuration(
      { items: [{ section: 'copilotServer' }, { section: 'editor' }] },
      { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) },
      next,
    );
    // model.nGpuLayers is the user's own (machine-scoped): initializationOptions only.
    assert.deepEqual(answer, [{ completion: { maxTokens: 32 } }, 'from VS Code']);
  });
});

describe('the explanation panel', () => {
  beforeEach(() => stub.reset());

  const RANGE = { start: { line: 2, character: 0 }, end: { line: 9, character: 4 } };

  test('renders the Markdown with VS Code\'s renderer, titled with file and lines', async () => {
    stub.builtinCommand = (id, args) => (id === 'markdown.api.render' ? `<p>${String(args[0])}</p>` : undefined);
    const panel = new ExplanationPanel();
    await panel.show('file:///src/app/main.py', RANGE, { markdown: 'Adds *two* numbers.', tokens: 12, latencyMs: 1500 });
    const webview = stub.webviewPanels[0];
    assert.equal(webview.title, 'Explain: main.py:3-10');
    assert.match(webview.webview.html, /<p>Adds \*two\* numbers\.<\/p>/);
    assert.match(webview.webview.html, /12 tokens · 1\.5 s/);
    panel.dispose();
  });

  test('the same explanation twice (command result and notification) renders once', async () => {
    let renders = 0;
    stub.builtinCommand = (id) => (id === 'markdown.api.render' ? `<p>${++renders}</p>` : undefined);
    const panel = new ExplanationPanel();
    await panel.show('file:///a.py', RANGE, { markdown: 'x' });
    await panel.show('file:///a.py', RANGE, { markdown: 'x' });
    assert.equal(renders, 1);
    assert.equal(stub.webviewPanels.length, 1);
    panel.dispose();
  });

  test('without the Markdown extension the text is shown escaped', async () => {
    const panel = new ExplanationPanel();
    await panel.show('file:///a.py', RANGE, { markdown: '<script>alert(1)</script>' });
    const html = stub.webviewPanels[0].webview.html;
    assert.ok(!html.includes('<script>alert'));
    assert.match(html, /&#60;script&#62;/);
    panel.dispose();
  });

  test('no script can run: scripts off and a CSP without script-src', () => {
    const html = explanationHtml('<t>', '<p>x</p>', '', 'vscode-resource:');
    assert.match(html, /default-src 'none'/);
    assert.doesNotMatch(html, /script-src/);
    assert.match(html, /<title>&#60;t&#62;<\/title>/);
  });

  test('titles and footers', () => {
    assert.equal(explanationTitle('file:///x/my%20file.ts', { start: { line: 4, character: 0 }, end: { line: 4, character: 9 } }), 'Explain: my file.ts:5');
    assert.equal(explanationFooter({ markdown: '' }), '');
    assert.equal(isExplanation({ uri: 'file:///a', range: RANGE, markdown: 'm' }), true);
    assert.equal(isExplanation({ markdown: 'm' }), false);
  });
});

describe('fix', () => {
  test('only quick fixes are offered from a code action answer', () => {
    const fixes = quickFixes([
      { title: 'Fix: syntax error (copilot)', kind: 'quickfix', data: {} },
      { title: 'Explain this code (copilot)', kind: '', command: { title: 'x', command: 'copilot.explain' } },
      { title: 'a bare command', command: 'copilot.fix' },
      { title: 'Fix more', kind: 'quickfix.copilot' },
    ]);
    assert.deepEqual(
      fixes.map((f) => f.title),
      ['Fix: syntax error (copilot)', 'Fix more'],
    );
    assert.deepEqual(quickFixes(null), []);
  });
});
