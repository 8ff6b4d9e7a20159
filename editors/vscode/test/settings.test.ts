import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  configurationItem,
  type ConfigurationLike,
  isExplicit,
  nest,
  parseGpuLayers,
  ServerSettings,
  type SettingInspection,
  targetFor,
  toggleLanguage,
  toServerValue,
} from '../src/settings';

/** Settings as VS Code reports them: `user` over `defaults`. */
function config(user: Record<string, unknown>, defaults: Record<string, unknown> = {}): ConfigurationLike {
  return {
    get: <T>(key: string) => (key in user ? user[key] : defaults[key]) as T | undefined,
    inspect: <T>(key: string) => ({ defaultValue: defaults[key], globalValue: user[key] }) as SettingInspection<T>,
  };
}

describe('values the server gets', () => {
  test('GPU layers: names stay names, counts become numbers', () => {
    assert.equal(parseGpuLayers('auto'), 'auto');
    assert.equal(parseGpuLayers('ALL'), 'all');
    assert.equal(parseGpuLayers('20'), 20);
    assert.equal(parseGpuLayers('-1'), -1);
    assert.equal(parseGpuLayers(12), 12);
    assert.equal(parseGpuLayers(''), 'auto');
    assert.equal(parseGpuLayers('lots'), 'lots', 'a bad value goes through for the server to name it');
  });

  test('an empty path means "the server decides", as does zero threads', () => {
    assert.equal(toServerValue('emptyIsNull', ''), null);
    assert.equal(toServerValue('emptyIsNull', '  '), null);
    assert.equal(toServerValue('emptyIsNull', '/models/a.gguf'), '/models/a.gguf');
    assert.equal(toServerValue('zeroIsNull', 0), null);
    assert.equal(toServerValue('zeroIsNull', 4), 4);
    assert.deepEqual(toServerValue('value', ['markdown']), ['markdown']);
  });

  test('dotted keys nest into the server\'s sections', () => {
    assert.deepEqual(nest({ 'completion.maxTokens': 32, 'completion.enabled': false, 'model.path': null, logLevel: 'debug' }), {
      completion: { maxTokens: 32, enabled: false },
      model: { path: null },
      logLevel: 'debug',
    });
  });
});

describe('the settings payload', () => {
  test('only settings the user set are sent', () => {
    const settings = new ServerSettings(() => config({ 'completion.maxTokens': 32, 'model.nGpuLayers': '10' }, { 'completion.maxTokens': 64 }));
    assert.deepEqual(settings.payload(), { completion: { maxTokens: 32 }, model: { nGpuLayers: 10 } });
  });

  test('nothing set sends nothing, so the server\'s config file still applies', () => {
    assert.deepEqual(new ServerSettings(() => config({}, { 'completion.maxTokens': 64 })).payload(), {});
  });

  test('a setting the user removes is sent once at its default, then no more', () => {
    const user: Record<string, unknown> = { 'completion.maxTokens': 32 };
    const settings = new ServerSettings(() => config(user, { 'completion.maxTokens': 64 }));
    settings.payload();
    delete user['completion.maxTokens'];
    assert.deepEqual(settings.payload(), { completion: { maxTokens: 64 } });
    assert.deepEqual(settings.payload(), {});
  });

  test('a new server process is not sent resets for what it never got', () => {
    const user: Record<string, unknown> = { 'completion.maxTokens': 32 };
    const settings = new ServerSettings(() => config(user, { 'completion.maxTokens': 64 }));
    settings.payload();
    settings.reset();
    delete user['completion.maxTokens'];
    assert.deepEqual(settings.payload(), {});
  });

  test('client-only settings never reach the server', () => {
    const settings = new ServerSettings(() => config({ serverPath: '/bin/x', serverArgs: ['-v'], 'trace.server': 'verbose' }));
    assert.deepEqual(settings.payload(), {});
  });

  test('workspace/configuration: our section, a part of it, and others left to VS Code', () => {
    const payload = () => ({ completion: { maxTokens: 32 } });
    assert.deepEqual(configurationItem('copilotServer', payload), { ours: true, value: { completion: { maxTokens: 32 } } });
    assert.deepEqual(configurationItem('copilotServer.completion', payload), { ours: true, value: { maxTokens: 32 } });
    assert.deepEqual(configurationItem('copilotServer.context', payload), { ours: true, value: null });
    assert.deepEqual(configurationItem('editor', payload), { ours: false });
    assert.deepEqual(configurationItem(undefined, payload), { ours: false });
  });
});

describe('settings written by commands', () => {
  test('explicit means set in some scope', () => {
    assert.equal(isExplicit(undefined), false);
    assert.equal(isExplicit({ defaultValue: 1 }), false);
    assert.equal(isExplicit({ workspaceValue: false }), true);
  });

  test('go to the most specific scope that has a value, else user settings', () => {
    assert.equal(targetFor(undefined), 'global');
    assert.equal(targetFor({ globalValue: true }), 'global');
    assert.equal(targetFor({ globalValue: true, workspaceValue: false }), 'workspace');
    assert.equal(targetFor({ workspaceFolderValue: false }), 'workspaceFolder');
  });

  test('toggling a language adds or removes it, keeping the others', () => {
    assert.deepEqual(toggleLanguage(undefined, 'python'), ['python']);
    assert.deepEqual(toggleLanguage(['markdown'], 'python'), ['markdown', 'python']);
    assert.deepEqual(toggleLanguage(['markdown', 'python'], 'python'), ['markdown']);
  });
});
