/**
 * The real `copilot-server --stdio`, spoken to over vscode-jsonrpc with the capabilities VS
 * Code's language client sends (computed by vscode-languageclient itself, under the stub) and
 * the settings payload the extension sends. One completion, one cancelled completion.
 */

import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CancellationTokenSource, createMessageConnection, type MessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { LanguageClient, TransportKind } from 'vscode-languageclient/node';
import {
  type ClientCapabilities,
  ConfigurationRequest,
  DidChangeConfigurationNotification,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  type InitializeResult,
  InitializeRequest,
  InitializedNotification,
  type InlineCompletionItem,
  type InlineCompletionList,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  LSPErrorCodes,
  RegistrationRequest,
  ShowMessageNotification,
  ShutdownRequest,
  ExitNotification,
  WorkDoneProgressCreateRequest,
  MessageType,
} from 'vscode-languageserver-protocol/node';

import { DOCUMENT_SELECTOR } from '../src/client';
import { ACCEPTED_COMMAND, parseStatus, type StatusParams, STATUS_NOTIFICATION } from '../src/protocol';
import { configurationItem, type ConfigurationLike, SECTION, ServerSettings, type SettingInspection } from '../src/settings';
import { requireFile, serverExecutable } from './server';

// Generous: the first completion takes seconds on a busy 2-core CPU.
const TIMEOUT_MS = 90_000;

/** What vscode-languageclient (as VS Code runs it) puts under `capabilities` in initialize. */
function vscodeClientCapabilities(command: string): ClientCapabilities {
  const client = new LanguageClient('copilotServer', 'copilot-server', { command, transport: TransportKind.stdio }, {
    documentSelector: DOCUMENT_SELECTOR,
  });
  return (client as unknown as { computeClientCapabilities(): ClientCapabilities }).computeClientCapabilities();
}

const MANIFEST = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, { default?: unknown }> } };
};

/** A user's settings.json as VS Code's configuration API shows it: over package.json's defaults. */
function userSettings(values: Record<string, unknown>): ConfigurationLike {
  const defaultOf = (key: string) => MANIFEST.contributes.configuration.properties[`${SECTION}.${key}`]?.default;
  return {
    get: <T>(key: string) => (key in values ? values[key] : defaultOf(key)) as T | undefined,
    inspect: <T>(key: string) => ({ defaultValue: defaultOf(key), globalValue: values[key] }) as SettingInspection<T>,
  };
}

function withTimeout<T>(promise: Promise<T>, what: string, ms = TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function itemsOf(result: InlineCompletionList | InlineCompletionItem[] | null): InlineCompletionItem[] {
  if (result === null) {
    return [];
  }
  return Array.isArray(result) ? result : result.items;
}

function textOf(item: InlineCompletionItem): string {
  return typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
}

const URI = `file://${path.join(os.tmpdir(), 'copilot-vscode-test', 'stats.py')}`;
const SOURCE = 'def mean(values):\n    """Return the arithmetic mean of values."""\n    total = sum(values)\n    return ';
const CURSOR = { line: 3, character: 11 };

describe('copilot-server --stdio with VS Code capabilities', () => {
  let server: ChildProcess;
  let connection: MessageConnection;
  let init: InitializeResult;
  let stderr = '';
  const statuses: StatusParams[] = [];
  const errors: string[] = [];
  const configurationPulls: unknown[] = [];
  const settingsValues: Record<string, unknown> = {
    'completion.maxTokens': 24,
    'completion.maxLines': 4,
    'model.nGpuLayers': '0',
    logLevel: 'info',
  };
  const settings = new ServerSettings(() => userSettings(settingsValues));
  const statusWaiters: { match: (s: StatusParams) => boolean; resolve: (s: StatusParams) => void }[] = [];

  function waitForStatus(match: (s: StatusParams) => boolean, what: string): Promise<StatusParams> {
    const seen = statuses.find(match);
    if (seen !== undefined) {
      return Promise.resolve(seen);
    }
    return withTimeout(new Promise((resolve) => statusWaiters.push({ match, resolve })), what);
  }

  before(async () => {
    const command = serverExecutable();
    requireFile(command, 'copilot-server');
    // An empty config home: the user's own config.json must not change what we test.
    const configHome = fs.mkdtempSync(path.join(os.tmpdir(), 'copilot-vscode-config-'));
    server = spawn(command, ['--stdio'], {
      env: { ...process.env, XDG_CONFIG_HOME: configHome },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    server.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    connection = createMessageConnection(new StreamMessageReader(server.stdout!), new StreamMessageWriter(server.stdin!));
    connection.onRequest(ConfigurationRequest.type, (params) => {
      configurationPulls.push(params);
      return params.items.map((item) => {
        const answer = configurationItem(item.section, () => settings.payload('project'));
        return answer.ours ? answer.value : null;
      });
    });
    connection.onRequest(WorkDoneProgressCreateRequest.type, () => undefined);
    connection.onRequest(RegistrationRequest.type, () => undefined);
    connection.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
      const status = parseStatus(params);
      assert.ok(status, `malformed copilot/status: ${JSON.stringify(params)}`);
      statuses.push(status);
      for (const waiter of statusWaiters.filter((w) => w.match(status))) {
        statusWaiters.splice(statusWaiters.indexOf(waiter), 1);
        waiter.resolve(status);
      }
    });
    connection.onNotification(ShowMessageNotification.type, (params) => {
      if (params.type === MessageType.Error) {
        errors.push(params.message);
      }
    });
    connection.listen();

    init = await withTimeout(
      connection.sendRequest(InitializeRequest.type, {
        processId: process.pid,
        clientInfo: { name: 'Visual Studio Code', version: '1.91.0' },
        locale: 'en',
        rootUri: null,
        workspaceFolders: null,
        capabilities: vscodeClientCapabilities(command),
        initializationOptions: settings.payload(),
      }),
      'initialize',
    );
    await connection.sendNotification(InitializedNotification.type, {});
  });

  after(async () => {
    try {
      await withTimeout(connection.sendRequest(ShutdownRequest.type), 'shutdown', 10_000);
      await connection.sendNotification(ExitNotification.type);
    } catch {
      // the exit below is what matters
    }
    connection?.dispose();
    if (server.exitCode === null) {
      server.kill();
    }
  });

  test('initialize answers what VS Code\'s client needs', () => {
    const caps = init.capabilities;
    assert.ok(caps.inlineCompletionProvider, 'no inlineCompletionProvider: VS Code would show no ghost text');
    // vscode-languageclient refuses any other position encoding than UTF-16.
    assert.ok(caps.positionEncoding === undefined || caps.positionEncoding === 'utf-16', `positionEncoding ${caps.positionEncoding}`);
    const commands = caps.executeCommandProvider?.commands ?? [];
    assert.ok(commands.includes(ACCEPTED_COMMAND), `the accept command must be advertised, got ${commands.join(', ')}`);
  });

  test('the model loads and the server pulls the settings', { timeout: TIMEOUT_MS + 5_000 }, async () => {
    const ready = await waitForStatus((s) => s.state === 'ready' || s.state === 'error', 'copilot/status ready');
    assert.equal(ready.state, 'ready', `server reported: ${ready.message}\n${stderr}`);
    assert.ok(configurationPulls.length >= 1, 'the server should pull workspace/configuration after initialized');
    assert.deepEqual(errors, [], 'the settings payload was rejected');
  });

  test('an inline completion is answered with ghost text and the accept command', { timeout: TIMEOUT_MS + 5_000 }, async () => {
    await connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri: URI, languageId: 'python', version: 1, text: SOURCE },
    });
    const result = await withTimeout(
      connection.sendRequest(InlineCompletionRequest.type, {
        textDocument: { uri: URI },
        position: CURSOR,
        context: { triggerKind: InlineCompletionTriggerKind.Invoked },
      }),
      'textDocument/inlineCompletion',
    );
    const items = itemsOf(result);
    // Invoked (Alt+\\): the suggestion and up to two alternatives to cycle through.
    assert.ok(items.length >= 1 && items.length <= 3, `expected 1-3 suggestions, got ${JSON.stringify(result)}\n${stderr}`);
    assert.equal(new Set(items.map((i) => textOf(i).trimEnd())).size, items.length, 'alternatives must differ');
    const item = items[0];
    assert.ok(textOf(item).trim().length > 0, 'empty suggestion');
    assert.ok(textOf(item).split('\n').length <= 4, 'completion.maxLines (4) was not applied');
    assert.deepEqual(item.range?.end, CURSOR);
    assert.equal(item.command?.command, ACCEPTED_COMMAND);
    // VS Code runs the item's command on accept; the client forwards it to the server.
    const accepted = await withTimeout(
      connection.sendRequest(ExecuteCommandRequest.type, { command: ACCEPTED_COMMAND, arguments: item.command?.arguments }),
      'workspace/executeCommand accept',
    );
    assert.ok(accepted === null || accepted === undefined);
  });

  test('a cancelled completion ends with RequestCancelled or nothing, and the server keeps answering', { timeout: 2 * TIMEOUT_MS }, async (t) => {
    const source = new CancellationTokenSource();
    const pending = connection.sendRequest(
      InlineCompletionRequest.type,
      {
        textDocument: { uri: URI },
        position: { line: 2, character: 4 },
        context: { triggerKind: InlineCompletionTriggerKind.Automatic },
      },
      source.token,
    );
    source.cancel(); // $/cancelRequest right behind the request, as VS Code does on the next keystroke
    try {
      const result = await withTimeout(pending, 'the cancelled request');
      assert.deepEqual(itemsOf(result), [], `a cancelled request should not return a suggestion: ${JSON.stringify(result)}`);
      t.diagnostic('the cancelled request was answered with no items');
    } catch (error) {
      assert.ok(error instanceof ResponseError, `unexpected failure: ${String(error)}`);
      assert.equal(error.code, LSPErrorCodes.RequestCancelled);
      t.diagnostic('the cancelled request was answered with RequestCancelled (-32800)');
    }
    // The same request as before is still answered (from the cache, or by the model).
    const again = await withTimeout(
      connection.sendRequest(InlineCompletionRequest.type, {
        textDocument: { uri: URI },
        position: CURSOR,
        context: { triggerKind: InlineCompletionTriggerKind.Invoked },
      }),
      'the request after the cancelled one',
    );
    assert.ok(itemsOf(again).length >= 1, `no suggestion after a cancel: ${JSON.stringify(again)}`);
  });

  test('settings pushed live turn completions off and on', { timeout: 2 * TIMEOUT_MS }, async () => {
    settingsValues['completion.enabled'] = false;
    await connection.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: settings.payload('project') } });
    const off = await withTimeout(
      connection.sendRequest(InlineCompletionRequest.type, {
        textDocument: { uri: URI },
        position: CURSOR,
        context: { triggerKind: InlineCompletionTriggerKind.Invoked },
      }),
      'a completion while disabled',
    );
    assert.deepEqual(itemsOf(off), [], 'completion.enabled=false was not applied');
    // Removing the setting sends its default once more: completions come back.
    delete settingsValues['completion.enabled'];
    await connection.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: settings.payload('project') } });
    const on = await withTimeout(
      connection.sendRequest(InlineCompletionRequest.type, {
        textDocument: { uri: URI },
        position: CURSOR,
        context: { triggerKind: InlineCompletionTriggerKind.Invoked },
      }),
      'a completion after re-enabling',
    );
    assert.ok(itemsOf(on).length >= 1, 'an unset completion.enabled did not reset to true');
    assert.deepEqual(errors, []);
  });
});
