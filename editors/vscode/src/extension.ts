/** Entry point: the output channel, status bar, server and the commands around them. */

import * as vscode from 'vscode';

import { ServerController } from './client';
import { ExplanationPanel, explainSelection } from './explanation';
import { fixAtCursor } from './fix';
import { RESTART_SETTINGS, SECTION, type Target, targetFor, toggleLanguage } from './settings';
import { StatusBar } from './status';

/** VS Code's own inline-suggestion commands, wrapped so that they show up under our name. */
export const BUILTIN = {
  trigger: 'editor.action.inlineSuggest.trigger',
  accept: 'editor.action.inlineSuggest.commit',
  acceptWord: 'editor.action.inlineSuggest.acceptNextWord',
  acceptLine: 'editor.action.inlineSuggest.acceptNextLine',
} as const;

export const EXTENSION_ID = 'copilot-server.copilot-server';

/** What activate() hands back, for tests and other extensions. */
export interface Api {
  controller: ServerController;
  status: StatusBar;
  explanations: ExplanationPanel;
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

export function activate(context: vscode.ExtensionContext): Api {
  const output = vscode.window.createOutputChannel('copilot-server', { log: true });
  const status = new StatusBar();
  const explanations = new ExplanationPanel();
  const controller = new ServerController(output, status, explanations);
  context.subscriptions.push(output, status, explanations, controller);

  const command = (id: string, run: (...args: unknown[]) => unknown): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, run));
  };
  command('copilotServer.enable', () => setCompletionsEnabled(true));
  command('copilotServer.disable', () => setCompletionsEnabled(false));
  command('copilotServer.toggle', () =>
    setCompletionsEnabled(vscode.workspace.getConfiguration(SECTION).get<boolean>('completion.enabled') === false),
  );
  command('copilotServer.toggleLanguage', toggleCurrentLanguage);
  command('copilotServer.triggerSuggestion', () => vscode.commands.executeCommand(BUILTIN.trigger));
  command('copilotServer.acceptSuggestion', () => vscode.commands.executeCommand(BUILTIN.accept));
  command('copilotServer.acceptWord', () => vscode.commands.executeCommand(BUILTIN.acceptWord));
  command('copilotServer.acceptLine', () => vscode.commands.executeCommand(BUILTIN.acceptLine));
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
      if (RESTART_SETTINGS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`))) {
        void controller.restart();
      } else {
        void controller.pushSettings();
      }
    }),
    vscode.window.onDidChangeActiveTextEditor(() => status.refresh()),
  );

  void controller.start();
  api = { controller, status, explanations };
  return api;
}

export async function deactivate(): Promise<void> {
  await api?.controller.stop();
  api = undefined;
}
