/** The status bar item: fed by the client's state, `copilot/status` and `$/progress`. */

import * as vscode from 'vscode';

import { SNOOZE_MINUTES, type SuggestionModes } from './modes';
import type { StatusParams } from './protocol';
import { SECTION } from './settings';
import { type ClientPhase, menuItems, NAME, type Progress, type StatusInputs, statusView } from './statusView';

type ProgressValue =
  | { kind: 'begin'; title: string; message?: string; percentage?: number }
  | { kind: 'report'; message?: string; percentage?: number }
  | { kind: 'end'; message?: string };

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private phase: ClientPhase = 'starting';
  private failure: string | undefined;
  private server: StatusParams | undefined;
  private readonly progress = new Map<string, Progress>();

  constructor(private readonly modes?: SuggestionModes) {
    this.item = vscode.window.createStatusBarItem('copilotServer.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = NAME;
    this.refresh();
    this.item.show();
  }

  setPhase(phase: ClientPhase, failure?: string): void {
    this.phase = phase;
    this.failure = failure;
    if (phase !== 'running') {
      this.server = undefined;
      this.progress.clear();
    }
    this.refresh();
  }

  setServer(status: StatusParams): void {
    this.server = status;
    this.refresh();
  }

  /** A `$/progress` value for `token` (begin / report / end). */
  onProgress(token: string | number, value: ProgressValue): void {
    const key = String(token);
    if (value.kind === 'begin') {
      this.progress.set(key, { title: value.title, message: value.message, percentage: value.percentage });
    } else if (value.kind === 'report') {
      const known = this.progress.get(key);
      if (known !== undefined) {
        this.progress.set(key, {
          ...known,
          message: value.message ?? known.message,
          percentage: value.percentage ?? known.percentage,
        });
      }
    } else {
      this.progress.delete(key);
    }
    this.refresh();
  }

  inputs(): StatusInputs {
    const config = vscode.workspace.getConfiguration(SECTION);
    const languageId = vscode.window.activeTextEditor?.document.languageId;
    const disabled = config.get<string[]>('completion.disabledLanguages') ?? [];
    return {
      phase: this.phase,
      failure: this.failure,
      server: this.server,
      progress: [...this.progress.values()],
      languageId,
      enabled: config.get<boolean>('completion.enabled') !== false,
      languageDisabled: languageId !== undefined && disabled.includes(languageId),
      triggerMode: this.modes?.triggerMode,
      snoozedUntil: this.modes?.snoozedUntil,
      snoozeMinutes: SNOOZE_MINUTES,
    };
  }

  refresh(): void {
    const view = statusView(this.inputs());
    this.item.text = view.text;
    const tooltip = new vscode.MarkdownString(view.tooltip, true);
    this.item.tooltip = tooltip;
    this.item.command = view.command;
    this.item.backgroundColor =
      view.background === undefined ? undefined : new vscode.ThemeColor(`statusBarItem.${view.background}Background`);
  }

  /** The click menu: enable/disable, per language, log, restart, settings. */
  async showMenu(): Promise<void> {
    const items = menuItems(this.inputs());
    const picked = await vscode.window.showQuickPick(
      items.map((item) => ({ label: item.label, description: item.description, command: item.command, args: item.args })),
      { title: NAME },
    );
    if (picked !== undefined) {
      await vscode.commands.executeCommand(picked.command, ...(picked.args ?? []));
    }
  }

  /** For tests: what the item shows now. */
  get shown(): { text: string; command: string | undefined; background: string | undefined } {
    const command = this.item.command;
    const background = this.item.backgroundColor as vscode.ThemeColor | undefined;
    return {
      text: this.item.text,
      command: typeof command === 'string' ? command : command?.command,
      background: background === undefined ? undefined : (background as unknown as { id: string }).id,
    };
  }

  dispose(): void {
    this.item.dispose();
  }
}
