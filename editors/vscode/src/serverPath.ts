/** Finding the `copilot-server` executable: the setting, the workspace's .venv, then PATH. */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface ServerPathInputs {
  /** copilotServer.serverPath; empty for "find it". */
  setting: string;
  /** Workspace folder paths, in order. */
  workspaceFolders: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  home?: string;
  isExecutable?: (file: string) => boolean;
}

export type ServerPath =
  | { path: string; source: 'setting' | 'venv' | 'PATH' }
  | { path?: undefined; error: string };

export const EXECUTABLE = 'copilot-server';

export function defaultIsExecutable(file: string): boolean {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) {
      return false;
    }
    if (process.platform === 'win32') {
      return true;
    }
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `~` and `${workspaceFolder}` (the first folder) expanded. */
export function expandPath(value: string, workspaceFolders: readonly string[], home: string): string {
  let out = value.trim();
  if (out === '~' || out.startsWith('~/') || out.startsWith('~\\')) {
    out = home + out.slice(1);
  }
  const folder = workspaceFolders[0];
  if (folder !== undefined) {
    out = out.split('${workspaceFolder}').join(folder);
  }
  return out;
}

function candidatesIn(dir: string, platform: NodeJS.Platform, env: ServerPathInputs['env']): string[] {
  const join = platform === 'win32' ? path.win32.join : path.posix.join;
  if (platform !== 'win32') {
    return [join(dir, EXECUTABLE)];
  }
  const exts = (env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').filter(Boolean);
  return exts.map((ext) => join(dir, EXECUTABLE + ext.toLowerCase()));
}

export function resolveServerPath(inputs: ServerPathInputs): ServerPath {
  const { platform, env, workspaceFolders } = inputs;
  const isExecutable = inputs.isExecutable ?? defaultIsExecutable;
  const home = inputs.home ?? os.homedir();
  const setting = inputs.setting.trim();
  if (setting !== '') {
    const file = expandPath(setting, workspaceFolders, home);
    if (isExecutable(file)) {
      return { path: file, source: 'setting' };
    }
    return { error: `copilotServer.serverPath is "${setting}", but ${file} is not an executable file.` };
  }
  const join = platform === 'win32' ? path.win32.join : path.posix.join;
  const venvBin = platform === 'win32' ? join('.venv', 'Scripts') : join('.venv', 'bin');
  for (const folder of workspaceFolders) {
    for (const file of candidatesIn(join(folder, venvBin), platform, env)) {
      if (isExecutable(file)) {
        return { path: file, source: 'venv' };
      }
    }
  }
  const delimiter = platform === 'win32' ? ';' : ':';
  const pathVar = env.PATH ?? env.Path ?? '';
  for (const dir of pathVar.split(delimiter).filter(Boolean)) {
    for (const file of candidatesIn(dir, platform, env)) {
      if (isExecutable(file)) {
        return { path: file, source: 'PATH' };
      }
    }
  }
  return {
    error:
      'copilot-server was not found in the workspace .venv or on PATH. Install it ' +
      '(`make install` in the copilot-server checkout creates .venv/bin/copilot-server) ' +
      'and set copilotServer.serverPath to that executable.',
  };
}
