/** Starting, stopping and restarting `copilot-server --stdio` through vscode-languageclient. */

import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  type Executable,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';

import { type ExplanationPanel, isExplanation } from './explanation';
import { SuggestionModes } from './modes';
import { NOTEBOOK_CELL_SCHEME, NOTEBOOK_CONTEXT_NOTIFICATION, NotebookContextSender } from './notebook';
import { EXPLANATION_NOTIFICATION, parseStatus, STATUS_NOTIFICATION } from './protocol';
import { resolveServerPath } from './serverPath';
import { configurationItem, SECTION, ServerSettings } from './settings';
import type { StatusBar } from './status';

export const CLIENT_ID = 'copilotServer';
export const CLIENT_NAME = 'copilot-server';

/** Every file and untitled buffer, and notebook cells (each cell is a text document);
 * languages turned off are skipped by the server. */
export const DOCUMENT_SELECTOR = [{ scheme: 'file' }, { scheme: 'untitled' }, { scheme: NOTEBOOK_CELL_SCHEME }];

/** The server command that loads the model again with the user's own settings. */
export const RELOAD_MODEL_COMMAND = 'copilot.reloadModel';

export class ServerController implements vscode.Disposable {
  private current: LanguageClient | undefined;
  private starting: Promise<void> | undefined;
  readonly settings = new ServerSettings(() => vscode.workspace.getConfiguration(SECTION));
  private readonly notebooks = new NotebookContextSender(async (params) => {
    await this.current?.sendNotification(NOTEBOOK_CONTEXT_NOTIFICATION, params);
  });

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly status: StatusBar,
    private readonly explanations: ExplanationPanel,
    readonly modes: SuggestionModes = new SuggestionModes(),
  ) {}

  /** The running client, or undefined (with a message to the user) when there is none. */
  runningClient(): LanguageClient | undefined {
    if (this.current?.state === State.Running) {
      return this.current;
    }
    void vscode.window
      .showWarningMessage('Copilot Server is not running.', 'Restart', 'Show Log')
      .then((choice) => {
        if (choice === 'Restart') {
          void this.restart();
        } else if (choice === 'Show Log') {
          this.output.show(true);
        }
      });
    return undefined;
  }

  get client(): LanguageClient | undefined {
    return this.current;
  }

  start(): Promise<void> {
    this.starting ??= this.doStart().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const config = vscode.workspace.getConfiguration(SECTION);
    const found = resolveServerPath({
      setting: config.get<string>('serverPath') ?? '',
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath),
      env: process.env,
      platform: process.platform,
    });
    if (found.path === undefined) {
      this.failed(found.error);
      return;
    }
    this.output.info(`starting ${found.path} --stdio (found via ${found.source})`);
    this.settings.reset();
    this.notebooks.reset();
    const server: Executable = {
      command: found.path,
      transport: TransportKind.stdio,
      args: config.get<string[]>('serverArgs') ?? [],
      options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, env: { ...process.env } },
    };
    const client = new LanguageClient(CLIENT_ID, CLIENT_NAME, server, this.clientOptions());
    client.onDidChangeState((event) => {
      if (event.newState === State.Running) {
        this.status.setPhase('running');
      } else if (event.newState === State.Starting) {
        this.status.setPhase('starting');
      } else if (this.current === client) {
        this.status.setPhase('stopped', 'The server stopped; see the log.');
      }
    });
    client.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
      const status = parseStatus(params);
      if (status !== undefined) {
        this.status.setServer(status);
      }
    });
    client.onNotification(EXPLANATION_NOTIFICATION, (params: unknown) => {
      if (isExplanation(params)) {
        void this.explanations.show(params.uri, params.range, params);
      }
    });
    this.current = client;
    this.status.setPhase('starting');
    try {
      await client.start();
    } catch (error) {
      this.current = undefined;
      this.failed(`${found.path} did not start: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  clientOptions(): LanguageClientOptions {
    return {
      documentSelector: DOCUMENT_SELECTOR,
      outputChannel: this.output,
      // The user's own settings (machine-scoped ones included) only here: initialize.
      initializationOptions: () => this.settings.payload('all'),
      middleware: {
        // Manual mode and snooze keep automatic requests back; a cell first sends its
        // notebook's other cells.
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          if (!this.modes.allows(context)) {
            return undefined;
          }
          try {
            await this.notebooks.beforeRequest(document);
          } catch (error) {
            this.output.warn(`sending the notebook's cells: ${error instanceof Error ? error.message : String(error)}`);
          }
          return next(document, position, context, token);
        },
        // Ghost text comes from inline completion; the server's completion-list fallback is for
        // editors without it, so skip the round trip on every trigger character.
        provideCompletionItem: () => undefined,
        workspace: {
          // The server pulls `copilotServer`: answer with what it understands, not the raw section.
          configuration: async (params, token, next) => {
            const answers = params.items.map((item) => configurationItem(item.section, () => this.settings.payload('project')));
            const needsNext = answers.some((answer) => !answer.ours);
            const theirs = needsNext ? await next(params, token) : [];
            return answers.map((answer, i) => (answer.ours ? answer.value : Array.isArray(theirs) ? theirs[i] : null));
          },
        },
        handleWorkDoneProgress: (token, params, next) => {
          this.status.onProgress(token, params);
          next(token, params);
        },
      },
    };
  }

  private failed(message: string): void {
    this.output.error(message);
    this.status.setPhase('failed', message);
    void vscode.window.showErrorMessage(`Copilot Server: ${message}`, 'Open Settings', 'Show Log').then((choice) => {
      if (choice === 'Open Settings') {
        void vscode.commands.executeCommand('copilotServer.openSettings');
      } else if (choice === 'Show Log') {
        this.output.show(true);
      }
    });
  }

  /** Live update: the settings the server understands, as didChangeConfiguration. */
  async pushSettings(): Promise<void> {
    const client = this.current;
    if (client?.state !== State.Running) {
      return;
    }
    const settings = { [SECTION]: this.settings.payload('project') };
    try {
      await client.sendNotification(DidChangeConfigurationNotification.type, { settings });
    } catch (error) {
      // The server went away meanwhile; its successor gets the settings at initialize.
      this.output.warn(`sending settings: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** A machine setting (model, engine) changed: the server takes those only from the user,
   * through `copilot.reloadModel` (or a new process, for a server without it). */
  async reloadModel(): Promise<void> {
    const client = this.current;
    if (client?.state !== State.Running) {
      return;
    }
    const commands = client.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
    if (!commands.includes(RELOAD_MODEL_COMMAND)) {
      await this.restart();
      return;
    }
    try {
      await client.sendRequest(ExecuteCommandRequest.type, {
        command: RELOAD_MODEL_COMMAND,
        arguments: [this.settings.payload('machine')],
      });
    } catch (error) {
      this.output.warn(`reloading the model: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const client = this.current;
    this.current = undefined;
    if (client !== undefined && client.needsStop()) {
      try {
        await client.stop(3000);
      } catch (error) {
        this.output.warn(`stopping the server: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    this.status.setPhase('stopped');
  }

  async restart(): Promise<void> {
    this.output.info('restarting the server');
    await this.stop();
    await this.start();
  }

  dispose(): void {
    void this.stop();
  }
}
