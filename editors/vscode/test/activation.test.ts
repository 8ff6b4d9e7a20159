/**
 * The whole extension, as VS Code would run it, with only the editor stubbed: activate()
 * starts the real copilot-server through vscode-languageclient, the status bar follows the
 * server, the server's configuration pull goes through our middleware, and the inline
 * completion provider that vscode-languageclient registers returns ghost text.
 */

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';

import type * as vscode from 'vscode';

import { ExecuteCommandRequest } from 'vscode-languageclient/node';

import { activate, type Api, deactivate } from '../src/extension';
import { ACCEPTED_COMMAND, STATUS_COMMAND } from '../src/protocol';
import { ICON, NAME } from '../src/statusView';
import { requireFile, serverExecutable } from './server';
import { InlineCompletionTriggerKind, NotebookCellKind, Position, stub } from './stub/vscode';

const READY = `${ICON} ${NAME}`;

// Generous: the first completion takes seconds on a busy 2-core CPU.
const TIMEOUT_MS = 90_000;

async function until(what: string, check: () => boolean, ms = TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const TOKEN = { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) };

type Provider = vscode.InlineCompletionItemProvider;

describe('the extension running the real server', () => {
  let context: { subscriptions: { dispose(): unknown }[] };
  let api: Api;
  let savedConfigHome: string | undefined;

  before(async () => {
    const command = serverExecutable();
    requireFile(command, 'copilot-server');
    stub.reset();
    // The user's own config.json must not change what we test.
    savedConfigHome = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'copilot-vscode-config-'));
    stub.setSetting('copilotServer.serverPath', command);
    stub.setSetting('copilotServer.completion.maxTokens', 16);
    stub.setSetting('copilotServer.completion.maxLines', 3);
    context = { subscriptions: [] };
    api = activate(context as unknown as vscode.ExtensionContext);
    await api.controller.start();
  });

  after(async () => {
    await deactivate();
    for (const item of context.subscriptions) {
      item.dispose();
    }
    if (savedConfigHome === undefined) {
      delete process.env.XDG_CONFIG_HOME;
    } else {
      process.env.XDG_CONFIG_HOME = savedConfigHome;
    }
  });

  test('the status bar goes from starting to ready', { timeout: TIMEOUT_MS + 5_000 }, async () => {
    const item = stub.statusBarItems[0];
    await until('the status bar to show ready', () => item.text === READY || item.text.startsWith('$(error)'));
    assert.equal(item.text, READY, `status: ${String((item.tooltip as { value?: string })?.value)}`);
    assert.match(String((item.tooltip as { value: string }).value), /Model: /);
  });

  test('the server accepted the settings (its configuration pull went through the middleware)', () => {
    const errors = stub.messages.filter((m) => m.kind === 'error');
    assert.deepEqual(errors, [], 'the server rejected a setting');
  });

  async function serverMetrics(): Promise<Record<string, number>> {
    const status = (await api.controller.client!.sendRequest(ExecuteCommandRequest.type, { command: STATUS_COMMAND, arguments: [] })) as {
      metrics: Record<string, number>;
    };
    return status.metrics;
  }

  async function ask(provider: Provider, document: unknown, position: Position, kind: InlineCompletionTriggerKind): Promise<vscode.InlineCompletionItem[]> {
    const result = await provider.provideInlineCompletionItems(
      document as vscode.TextDocument,
      position as vscode.Position,
      { triggerKind: kind, selectedCompletionInfo: undefined } as unknown as vscode.InlineCompletionContext,
      TOKEN as unknown as vscode.CancellationToken,
    );
    return Array.isArray(result) ? result : (result?.items ?? []);
  }

  const textOf = (item: vscode.InlineCompletionItem): string => (typeof item.insertText === 'string' ? item.insertText : item.insertText.value);

  test('vscode-languageclient registered an inline completion provider; Alt+\\ gives suggestions to cycle, accepting one counts it', { timeout: 2 * TIMEOUT_MS }, async () => {
    assert.equal(stub.inlineProviders.length, 1, 'no inline completion provider registered');
    const provider = stub.inlineProviders[0].provider as Provider;
    const file = path.join(os.tmpdir(), 'copilot-vscode-activation', 'greet.py');
    const document = stub.openDocument(file, 'python', 'def greet(name):\n    """Say hello to name."""\n    print(');
    const items = await ask(provider, document, new Position(2, 10), InlineCompletionTriggerKind.Invoke);
    // An explicit request (Invoke) gets the suggestion and its alternatives (Alt+] cycles).
    const texts = items.map(textOf);
    assert.ok(items.length >= 2 && items.length <= 3, `expected 2-3 suggestions: ${JSON.stringify(texts)}`);
    assert.equal(new Set(texts.map((t) => t.trimEnd())).size, texts.length, `not distinct: ${JSON.stringify(texts)}`);
    assert.ok(texts.every((t) => t.trim().length > 0));
    assert.ok(items.every((item) => item.command?.command === ACCEPTED_COMMAND));
    // VS Code runs the item's command on accept: the client registered it as a VS Code
    // command, which reaches the server and is counted there.
    assert.equal((await serverMetrics()).accepted, 0);
    const vscodeApi = require('vscode') as typeof vscode;
    await vscodeApi.commands.executeCommand(ACCEPTED_COMMAND, ...(items[1].command?.arguments ?? []));
    const metrics = await serverMetrics();
    assert.equal(metrics.accepted, 1);
    assert.equal(metrics.accepted_chars, texts[1].length);
  });

  test('a notebook cell gets ghost text, with the notebook\'s other cells as context', { timeout: TIMEOUT_MS + 5_000 }, async () => {
    const provider = stub.inlineProviders[0].provider as Provider;
    // Only the cell being edited is open to the server: the cell above reaches it as the
    // notebook's context (copilot/notebookContext), nothing else.
    const notebook = stub.openNotebook(
      path.join(os.tmpdir(), 'copilot-vscode-activation', 'analysis.ipynb'),
      [
        { kind: NotebookCellKind.Code, languageId: 'python', text: 'def zorblax_frobnicate(values):\n    return [v * 3 for v in values]\n' },
        { kind: NotebookCellKind.Markup, languageId: 'markdown', text: '# Results' },
        { kind: NotebookCellKind.Code, languageId: 'python', text: 'numbers = [1, 2, 3]\ntripled = ' },
      ],
      [2],
    );
    const cell = notebook.getCells()[2].document;
    assert.equal(cell.uri.scheme, 'vscode-notebook-cell');
    const items = await ask(provider, cell, new Position(1, 10), InlineCompletionTriggerKind.Automatic);
    assert.ok(items.length >= 1, 'no ghost text in a notebook cell');
    // Without the cell above the model writes a list comprehension here (measured).
    assert.match(textOf(items[0]), /^zorblax_frobnicate\(/, `the cell above was not used: ${textOf(items[0])}`);
  });

  test('disabling completions in the settings reaches the server live', { timeout: TIMEOUT_MS }, async () => {
    const provider = stub.inlineProviders[0].provider as Provider;
    await (require('vscode') as typeof vscode).commands.executeCommand('copilotServer.disable');
    assert.equal(stub.statusBarItems[0].text, `$(circle-slash) ${NAME}`);
    const document = stub.openDocument(path.join(os.tmpdir(), 'copilot-vscode-activation', 'other.py'), 'python', 'import os\n\nos.');
    // didChangeConfiguration and didOpen are notifications: give them a moment to arrive first.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const result = await provider.provideInlineCompletionItems(
      document as unknown as vscode.TextDocument,
      new Position(2, 3) as vscode.Position,
      { triggerKind: InlineCompletionTriggerKind.Invoke, selectedCompletionInfo: undefined } as unknown as vscode.InlineCompletionContext,
      TOKEN as unknown as vscode.CancellationToken,
    );
    const items = Array.isArray(result) ? result : (result?.items ?? []);
    assert.deepEqual(items, [], 'the server still completes with completion.enabled = false');
  });

  test('restart gives a new server that comes up ready', { timeout: TIMEOUT_MS + 5_000 }, async () => {
    await (require('vscode') as typeof vscode).commands.executeCommand('copilotServer.enable');
    await (require('vscode') as typeof vscode).commands.executeCommand('copilotServer.restart');
    const item = stub.statusBarItems[0];
    await until('ready after restart', () => item.text === READY || item.text.startsWith('$(error)'));
    assert.equal(item.text, READY);
    assert.equal(stub.inlineProviders.length, 1, 'the old provider was not disposed or the new one not registered');
  });
});
