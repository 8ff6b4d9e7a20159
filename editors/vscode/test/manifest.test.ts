/** package.json is the extension's contract with VS Code and vsce: keep it consistent. */

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { CLIENT_SETTINGS, RESTART_SETTINGS, SECTION, SERVER_SETTINGS } from '../src/settings';

const root = path.join(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  publisher: string;
  main: string;
  engines: { vscode: string };
  activationEvents: string[];
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
  contributes: {
    commands: { command: string; title: string; category?: string }[];
    keybindings: { command: string; key: string; when?: string }[];
    menus: Record<string, { command: string; when?: string }[]>;
    configuration: { properties: Record<string, { type: unknown; default?: unknown; markdownDescription?: string; description?: string }> };
  };
};

function version(range: string): number[] {
  return range.replace(/^[\^~>=\s]+/, '').split('.').map(Number);
}

function atLeast(a: number[], b: number[]): boolean {
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) {
      return (a[i] ?? 0) > (b[i] ?? 0);
    }
  }
  return true;
}

test('every contributed setting is a server setting or a client one, described, with a default', () => {
  const contributed = Object.keys(pkg.contributes.configuration.properties).sort();
  const known = [...Object.keys(SERVER_SETTINGS), ...CLIENT_SETTINGS].map((key) => `${SECTION}.${key}`).sort();
  assert.deepEqual(contributed, known);
  for (const [key, schema] of Object.entries(pkg.contributes.configuration.properties)) {
    assert.ok(schema.markdownDescription ?? schema.description, `${key} has no description`);
    assert.ok('default' in schema, `${key} has no default`);
  }
  for (const key of RESTART_SETTINGS) {
    assert.ok(CLIENT_SETTINGS.includes(key));
  }
});

test('keybindings and menus name contributed commands (or VS Code\'s own)', () => {
  const commands = new Set(pkg.contributes.commands.map((c) => c.command));
  for (const binding of pkg.contributes.keybindings) {
    assert.ok(commands.has(binding.command), `keybinding for unknown ${binding.command}`);
  }
  for (const [menu, entries] of Object.entries(pkg.contributes.menus)) {
    for (const entry of entries) {
      assert.ok(commands.has(entry.command), `${menu} names unknown ${entry.command}`);
    }
  }
  for (const command of pkg.contributes.commands) {
    assert.equal(command.category, 'Copilot Server', `${command.command} has no category`);
  }
});

test('accept line and trigger have keybindings that only apply with an inline suggestion / in an editor', () => {
  const acceptLine = pkg.contributes.keybindings.find((b) => b.command === 'copilotServer.acceptLine');
  assert.match(acceptLine?.when ?? '', /inlineSuggestionVisible/);
  const trigger = pkg.contributes.keybindings.find((b) => b.command === 'copilotServer.triggerSuggestion');
  assert.equal(trigger?.key, 'alt+\\');
});

test('versions: languageclient with native inline completion, @types/vscode within engines', () => {
  assert.ok(atLeast(version(pkg.dependencies['vscode-languageclient']), [10, 0, 1]));
  assert.ok(
    atLeast(version(pkg.engines.vscode), version(pkg.devDependencies['@types/vscode'])),
    'vsce refuses @types/vscode newer than engines.vscode',
  );
});

test('packaging: the bundle is main, and the scripts CI and users run exist', () => {
  assert.equal(pkg.main, './dist/extension.js');
  assert.deepEqual(pkg.activationEvents, ['onStartupFinished']);
  for (const script of ['build', 'package', 'test', 'pretest']) {
    assert.ok(pkg.scripts[script], `no "${script}" script`);
  }
  const ignore = fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8');
  assert.match(ignore, /!dist\/extension\.js/);
  assert.ok(fs.existsSync(path.join(root, 'README.md')) && fs.existsSync(path.join(root, 'LICENSE')));
});

test('the esbuild bundle (what the .vsix runs) loads and activates', async () => {
  const bundle = path.join(root, 'dist', 'extension.js');
  assert.ok(fs.existsSync(bundle), 'dist/extension.js missing: `npm test` builds it in pretest');
  const { stub } = require('./stub/vscode') as typeof import('./stub/vscode');
  stub.reset();
  stub.setSetting('copilotServer.serverPath', '/nonexistent/copilot-server');
  const extension = require(bundle) as { activate(context: unknown): unknown; deactivate(): Promise<void> };
  const context = { subscriptions: [] as { dispose(): unknown }[] };
  extension.activate(context);
  try {
    assert.ok(stub.registeredCommands().includes('copilotServer.explain'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(stub.statusBarItems[0]?.text, '$(error) Copilot');
  } finally {
    await extension.deactivate();
    context.subscriptions.forEach((item) => item.dispose());
  }
});
