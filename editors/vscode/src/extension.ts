/** Entry point: the output channel, status bar, server and the commands around them. */

import * as vscode from 'vscode';

import { ServerController } from './client';
import { ExplanationPanel, explainSelection } from './explanation';
import { fixAtCursor } from './fix';
import { SNOOZE_MINUTES, SuggestionModes } from './modes';
import { DISMISS_COMMAND, JUMP_OR_APPLY_COMMAND, NextEdits } from './nextEdit';
import { MACHINE_SETTINGS, RESTART_SETTINGS, SECTION, type Target, targetFor, toggleLanguage } from './settings';
import { StatusBar } from './status';

export const EXTENSION_ID = 'copilot-server.copilot-server';

/** What activate() hands back, for tests and other extensions. */
export interface Api {
  controller: ServerController;
  status: StatusBar;
  explanations: ExplanationPanel;
  modes: SuggestionModes;
}

let api: Api | undefined;

function vscodeTarget(target: Target): vscode.ConfigurationTarget {
  switch (target) {
    case 'workspaceFolder':
      return vscode.ConfigurationTarget.WorkspaceFolder;
    case 'workspace':
      return vscode.ConfigurationTarget.Workspace;
    case 'global':
      return vscode.ConfigurationTarget.Global;
  }
}

/** Write a setting where it takes effect: the most specific scope that already has a value. */
async function updateSetting(key: string, value: unknown): Promise<void> {
  const config = vscode.workspace.getConfiguration(SECTION);
  await config.update(key, value, vscodeTarget(targetFor(config.inspect(key))));
}

export async function setCompletionsEnabled(enabled: boolean): Promise<void> {
  await updateSetting('completion.enabled', enabled);
}

export async function toggleCurrentLanguage(): Promise<void> {
  const languageId = vscode.window.activeTextEditor?.document.languageId;
  if (languageId === undefined) {
    void vscode.window.showInformationMessage('Copilot Server: open a file to turn its language on or off.');
    return;
  }
  const config = vscode.workspace.getConfiguration(SECTION);
  await updateSetting('completion.disabledLanguages', toggleLanguage(config.get<string[]>('completion.disabledLanguages'), languageId));
}

/** Snooze automatic suggestions: for `minutes`, or as long as the user picks. */
async function snooze(modes: SuggestionModes, minutes?: unknown): Promise<void> {
  let chosen = typeof minutes === 'number' && minutes > 0 ? minutes : undefined;
  if (chosen === undefined) {
    const picked = await vscode.window.showQuickPick(
      SNOOZE_MINUTES.map((m) => ({ label: `${m} minutes`, minutes: m })),
      { title: 'Snooze suggestions for' },
    );
    chosen = picked?.minutes;
  }
  if (chosen !== undefined) {
    modes.snooze(chosen);
  }
}

export function activate(context: vscode.ExtensionContext): Api {
  const output = vscode.window.createOutputChannel('copilot-server', { log: true });
  const modes = new SuggestionModes();
  const status = new StatusBar(modes);
  const explanations = new ExplanationPanel();
  const controller = new ServerController(output, status, explanations, modes);
  context.subscriptions.push(output, modes, status, explanations, controller, modes.onDidChange(() => status.refresh()));

  const command = (id: string, run: (...args: unknown[]) => unknown): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, run));
  };
  command('copilotServer.enable', () => setCompletionsEnabled(true));
  command('copilotServer.disable', () => setCompletionsEnabled(false));
  command('copilotServer.toggle', () =>
    setCompletionsEnabled(vscode.workspace.getConfiguration(SECTION).get<boolean>('completion.enabled') === false),
  );
  command('copilotServer.toggleLanguage', toggleCurrentLanguage);
  // Trigger (Alt+\), accept (Tab), accept word, cycling: VS Code's own commands and keys.
  command('copilotServer.snooze', (minutes) => snooze(modes, minutes));
  command('copilotServer.resume', () => modes.resume());
  command('copilotServer.toggleTriggerMode', () => updateSetting('triggerMode', modes.triggerMode === 'manual' ? 'automatic' : 'manual'));
  command('copilotServer.explain', async () => {
    const client = controller.runningClient();
    if (client !== undefined) {
      await explainSelection(client, explanations);
    }
  });
  command('copilotServer.fix', async () => {
    const client = controller.runningClient();
    if (client !== undefined) {
      await fixAtCursor(client);
    }
  });
  // Next edit suggestions: Tab jumps to / applies the shown edit, Escape dismisses it.
  const nextEdits = new NextEdits(() => controller.runningClient());
  context.subscriptions.push(nextEdits);
  command(JUMP_OR_APPLY_COMMAND, () => nextEdits.jumpOrApply());
  command(DISMISS_COMMAND, () => nextEdits.dismiss());
  command('copilotServer.restart', () => controller.restart());
  command('copilotServer.showLog', () => output.show(true));
  command('copilotServer.showMenu', () => status.showMenu());
  command('copilotServer.openSettings', () =>
    vscode.commands.executeCommand('workbench.action.openSettings', `@ext:${EXTENSION_ID}`),
  );

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration(SECTION)) {
        return;
      }
      status.refresh();
      const affects = (key: string) => event.affectsConfiguration(`${SECTION}.${key}`);
      if (RESTART_SETTINGS.some(affects)) {
        void controller.restart();
        return;
      }
      if (MACHINE_SETTINGS.some(affects)) {
        void controller.reloadModel(); // the server takes these from the user only
      }
      void controller.pushSettings();
    }),
    vscode.window.onDidChangeActiveTextEditor(() => status.refresh()),
  );

  void controller.start();
  api = { controller, status, explanations, modes };
  return api;
}

export async function deactivate(): Promise<void> {
  await api?.controller.stop();
  api = undefined;
}
