/** package.json is the extension's contract with VS Code and vsce: keep it consistent. */

import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { CLIENT_SETTINGS, isMachineSetting, MACHINE_SETTINGS, RESTART_SETTINGS, SECTION, SERVER_SETTINGS } from '../src/settings';
import { ICON } from '../src/statusView';

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
    keybindings: { command: string; key: string; mac?: string; when?: string }[];
    icons?: Record<string, { description: string; default: { fontPath: string; fontCharacter: string } }>;
    menus: Record<string, { command: string; when?: string }[]>;
    configuration: { properties: Record<string, { type: unknown; default?: unknown; markdownDescription?: string; description?: string; scope?: string }> };
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
  for (const key of MACHINE_SETTINGS) {
    assert.ok(key in SERVER_SETTINGS, key);
  }
});

test('keybindings and menus name contributed commands (or VS Code\'s own)', () => {
  const commands = new Set(pkg.contributes.commands.map((c) => c.command));
  for (const binding of pkg.contributes.keybindings) {
    const vscodes = binding.command.startsWith('editor.action.inlineSuggest.');
    assert.ok(commands.has(binding.command) || vscodes, `keybinding for unknown ${binding.command}`);
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

/** Keys VS Code itself binds (its default keybindings), and the command each runs there. */
const CORE_KEYS: Record<string, string> = {
  'alt+\\': 'editor.action.inlineSuggest.trigger',
  tab: 'editor.action.inlineSuggest.commit',
  'ctrl+right': 'editor.action.inlineSuggest.acceptNextWord',
  'cmd+right': 'editor.action.inlineSuggest.acceptNextWord',
  'alt+]': 'editor.action.inlineSuggest.showNext',
  'alt+[': 'editor.action.inlineSuggest.showPrevious',
  // Not inline-suggestion keys: window management that a binding must not take away.
  'ctrl+alt+right': 'workbench.action.moveEditorToNextGroup',
  'ctrl+cmd+right': 'workbench.action.moveEditorToNextGroup',
};

test('keybindings only add what VS Code lacks, and only while a suggestion shows', () => {
  assert.ok(pkg.contributes.keybindings.length > 0);
  for (const binding of pkg.contributes.keybindings) {
    for (const key of [binding.key, binding.mac].filter((k): k is string => k !== undefined)) {
      // Re-binding a key to the command VS Code already runs on it adds nothing.
      assert.notEqual(CORE_KEYS[key], binding.command, `${key} already runs ${binding.command} in VS Code`);
      // Every key here takes something from VS Code (or a user): only while one of our
      // suggestions shows (an inline suggestion, or a next edit).
      assert.match(
        binding.when ?? '',
        /(^|&& )(inlineSuggestionVisible|copilotServer\.nextEditShown)( &&|$)/,
        `${key} (${binding.command}) must need a visible suggestion`,
      );
    }
  }
  // Accept line has no default key; on macOS ⌃⌘→ moves the editor to the next group
  // whenever no suggestion shows.
  const acceptLine = pkg.contributes.keybindings.find((b) => b.command === 'editor.action.inlineSuggest.acceptNextLine');
  assert.equal(acceptLine?.mac, 'ctrl+cmd+right');
  assert.equal(acceptLine?.key, 'ctrl+alt+right');
});

test('no wrapper commands around VS Code\'s own inline-suggestion commands', () => {
  for (const command of pkg.contributes.commands) {
    assert.doesNotMatch(command.command, /^copilotServer\.(accept|trigger)/, `${command.command} wraps a VS Code command`);
  }
});

test('settings that decide where code and keys go are machine-scoped: a workspace cannot set them', () => {
  const properties = pkg.contributes.configuration.properties;
  const machine = Object.keys(properties)
    .filter((key) => properties[key].scope === 'machine' || properties[key].scope === 'application')
    .map((key) => key.slice(SECTION.length + 1))
    .sort();
  assert.deepEqual(machine, [...MACHINE_SETTINGS, 'serverArgs', 'serverPath'].sort());
  for (const key of ['model.path', 'engine.kind', 'engine.url', 'engine.apiKeyEnv', 'engine.modelName']) {
    assert.ok(isMachineSetting(key), key);
    assert.equal(properties[`${SECTION}.${key}`].scope, 'machine', key);
  }
  assert.equal(properties[`${SECTION}.engine.timeoutS`].scope, undefined, 'a timeout is harmless from a project');
});

test('the status bar icon is ours: contributed, with its font in the package', () => {
  const name = ICON.slice(2, -1);
  const icon = pkg.contributes.icons?.[name];
  assert.ok(icon, `package.json contributes no icon ${name}`);
  const font = fs.readFileSync(path.join(root, icon.default.fontPath));
  assert.equal(font.subarray(0, 4).toString('latin1'), 'wOFF');
  assert.equal(icon.default.fontCharacter, '\\E000');
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
  // No server (and no model) before a file of a supported language is opened.
  assert.ok(pkg.activationEvents.length > 0);
  for (const event of pkg.activationEvents) {
    assert.match(event, /^onLanguage:[a-z]+$/);
  }
  assert.ok(pkg.activationEvents.includes('onLanguage:python'));
  for (const script of ['build', 'package', 'test', 'pretest']) {
    assert.ok(pkg.scripts[script], `no "${script}" script`);
  }
  const ignore = fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8');
  assert.match(ignore, /!dist\/extension\.js/);
  assert.ok(fs.existsSync(path.join(root, 'README.md')) && fs.existsSync(path.join(root, 'LICENSE')));
});

test('the .vsix holds the bundle and the icon font, not the 1.8 MB source map', { timeout: 60_000 }, () => {
  assert.ok(fs.existsSync(path.join(root, 'dist', 'extension.js.map')), 'the build makes a source map (for debugging)');
  // vsce's own listing of what `npm run package` would put in the .vsix.
  const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
  const listed = execFileSync(process.execPath, [vsce, 'ls', '--no-dependencies'], { cwd: root, encoding: 'utf8', timeout: 60_000 })
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .sort();
  assert.deepEqual(listed, ['LICENSE', 'README.md', 'dist/extension.js', 'media/copilot-server-icons.woff', 'package.json']);
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
    assert.equal(stub.statusBarItems[0]?.text, '$(error) copilot-server');
  } finally {
    await extension.deactivate();
    context.subscriptions.forEach((item) => item.dispose());
  }
});
