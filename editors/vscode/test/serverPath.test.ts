import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { expandPath, resolveServerPath, type ServerPathInputs } from '../src/serverPath';

function inputs(files: string[], overrides: Partial<ServerPathInputs> = {}): ServerPathInputs {
  const present = new Set(files);
  return {
    setting: '',
    workspaceFolders: ['/work/project'],
    env: { PATH: '/usr/local/bin:/usr/bin' },
    platform: 'linux',
    home: '/home/ada',
    isExecutable: (file) => present.has(file),
    ...overrides,
  };
}

describe('finding copilot-server', () => {
  test('the setting wins, with ~ and ${workspaceFolder} expanded', () => {
    const found = resolveServerPath(
      inputs(['/home/ada/bin/copilot-server', '/work/project/.venv/bin/copilot-server'], { setting: '~/bin/copilot-server' }),
    );
    assert.deepEqual(found, { path: '/home/ada/bin/copilot-server', source: 'setting' });
    assert.equal(expandPath('${workspaceFolder}/.venv/bin/x', ['/w'], '/h'), '/w/.venv/bin/x');
  });

  test('a setting that points nowhere is an error that names it, not a silent fallback', () => {
    const found = resolveServerPath(inputs(['/usr/bin/copilot-server'], { setting: '/nope/copilot-server' }));
    assert.equal(found.path, undefined);
    assert.match('error' in found ? found.error : '', /serverPath.*\/nope\/copilot-server/);
  });

  test("the workspace's .venv comes before PATH", () => {
    const found = resolveServerPath(inputs(['/work/project/.venv/bin/copilot-server', '/usr/bin/copilot-server']));
    assert.deepEqual(found, { path: '/work/project/.venv/bin/copilot-server', source: 'venv' });
  });

  test('PATH in order', () => {
    const found = resolveServerPath(inputs(['/usr/bin/copilot-server', '/usr/local/bin/copilot-server'], { workspaceFolders: [] }));
    assert.deepEqual(found, { path: '/usr/local/bin/copilot-server', source: 'PATH' });
  });

  test('Windows: .venv\\Scripts and PATHEXT', () => {
    const found = resolveServerPath(
      inputs(['C:\\proj\\.venv\\Scripts\\copilot-server.exe'], {
        platform: 'win32',
        workspaceFolders: ['C:\\proj'],
        env: { Path: 'C:\\Windows', PATHEXT: '.COM;.EXE' },
      }),
    );
    assert.deepEqual(found, { path: 'C:\\proj\\.venv\\Scripts\\copilot-server.exe', source: 'venv' });
  });

  test('nowhere: an error that says how to get it', () => {
    const found = resolveServerPath(inputs([]));
    assert.equal(found.path, undefined);
    assert.match('error' in found ? found.error : '', /not found.*copilotServer\.serverPath/s);
  });
});
