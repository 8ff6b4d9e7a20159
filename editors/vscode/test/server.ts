/** Where the real copilot-server is, for the tests that start it. */

import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository root (this file runs from editors/vscode/out/test). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..');

/** $COPILOT_SERVER_PATH, else the project's .venv/bin/copilot-server. */
export function serverExecutable(): string {
  const fromEnv = process.env.COPILOT_SERVER_PATH;
  if (fromEnv) {
    return path.resolve(fromEnv);
  }
  const bin = process.platform === 'win32' ? path.join('.venv', 'Scripts', 'copilot-server.exe') : path.join('.venv', 'bin', 'copilot-server');
  return path.join(REPO_ROOT, bin);
}

/** The Python next to the server (a virtualenv's bin/ has both). */
export function serverPython(): string {
  const dir = path.dirname(serverExecutable());
  return path.join(dir, process.platform === 'win32' ? 'python.exe' : 'python');
}

export function requireFile(file: string, what: string): void {
  if (!fs.existsSync(file)) {
    throw new Error(
      `${what} not found at ${file}. Run \`make install\` in the repository root, ` +
        'or set COPILOT_SERVER_PATH to a copilot-server executable.',
    );
  }
}
