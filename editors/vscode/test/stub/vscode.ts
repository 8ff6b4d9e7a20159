/**
 * A small stand-in for the `vscode` module, enough for the extension's own logic and for
 * vscode-languageclient to load and compute its client capabilities. VS Code itself cannot
 * run here; what this cannot show, the protocol test shows against the real server.
 *
 * Tests reach the recorded calls and the knobs through `stub`.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';

type Listener<T> = (value: T) => unknown;

export class Disposable {
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((item) => item.dispose()));
  }
  constructor(private readonly onDispose: () => unknown = () => undefined) {}
  dispose(): void {
    this.onDispose();
  }
}

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  readonly event = (listener: Listener<T>): Disposable => {
    this.listeners.push(listener);
    return new Disposable(() => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    });
  };
  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      listener(value);
    }
  }
  dispose(): void {
    this.listeners = [];
  }
}

function noEvent(): (listener: unknown) => Disposable {
  return () => new Disposable();
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly path: string,
    readonly fragment = '',
  ) {}
  static file(fsPath: string): Uri {
    return new Uri('file', fsPath);
  }
  static from(parts: { scheme: string; path: string; fragment?: string }): Uri {
    return new Uri(parts.scheme, parts.path, parts.fragment ?? '');
  }
  static parse(value: string): Uri {
    const url = new URL(value);
    return new Uri(url.protocol.replace(/:$/, ''), decodeURIComponent(url.pathname), url.hash.replace(/^#/, ''));
  }
  get fsPath(): string {
    return this.path;
  }
  toString(): string {
    const base = this.scheme === 'file' ? `file://${encodeURI(this.path)}` : `${this.scheme}:${encodeURI(this.path)}`;
    return this.fragment ? `${base}#${this.fragment}` : base;
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: Position | number, b: Position | number, c?: number, d?: number) {
    this.start = typeof a === 'number' ? new Position(a, b as number) : a;
    this.end = typeof a === 'number' ? new Position(c as number, d as number) : (b as Position);
  }
  get isEmpty(): boolean {
    return this.start.line === this.end.line && this.start.character === this.end.character;
  }
  intersection(other: Range): Range | undefined {
    const before = (p: Position, q: Position) => p.line < q.line || (p.line === q.line && p.character < q.character);
    const start = before(this.start, other.start) ? other.start : this.start;
    const end = before(this.end, other.end) ? this.end : other.end;
    return before(end, start) ? undefined : new Range(start, end);
  }
}

export class Selection extends Range {
  constructor(
    readonly anchor: Position,
    readonly active: Position,
  ) {
    super(anchor, active);
  }
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class MarkdownString {
  constructor(
    public value = '',
    public supportThemeIcons = false,
  ) {}
}

export class CodeActionKind {
  static readonly Empty = new CodeActionKind('');
  static readonly QuickFix = new CodeActionKind('quickfix');
  static readonly Refactor = new CodeActionKind('refactor');
  static readonly RefactorExtract = new CodeActionKind('refactor.extract');
  static readonly RefactorInline = new CodeActionKind('refactor.inline');
  static readonly RefactorMove = new CodeActionKind('refactor.move');
  static readonly RefactorRewrite = new CodeActionKind('refactor.rewrite');
  static readonly Source = new CodeActionKind('source');
  static readonly SourceOrganizeImports = new CodeActionKind('source.organizeImports');
  static readonly SourceFixAll = new CodeActionKind('source.fixAll');
  static readonly Notebook = new CodeActionKind('notebook');
  constructor(readonly value: string) {}
  append(part: string): CodeActionKind {
    return new CodeActionKind(this.value ? `${this.value}.${part}` : part);
  }
}

// Classes vscode-languageclient extends or checks with instanceof; plain shapes are enough.
export class CompletionItem {}
export class CodeLens {}
export class DocumentLink {}
export class CodeAction {}
export class Diagnostic {}
export class CallHierarchyItem {}
export class TypeHierarchyItem {}
export class SymbolInformation {}
export class InlayHint {}
export class CancellationError extends Error {}

export class SnippetString {
  constructor(public value = '') {}
}

export class InlineCompletionItem {
  constructor(
    public insertText: string | SnippetString,
    public range?: Range,
    public command?: { title: string; command: string; arguments?: unknown[] },
  ) {}
}

export class InlineCompletionList {
  constructor(public items: InlineCompletionItem[]) {}
}

export enum InlineCompletionTriggerKind {
  Invoke = 0,
  Automatic = 1,
}

export enum NotebookCellKind {
  Markup = 1,
  Code = 2,
}

/** An open notebook: its cells in order, each with its text document. */
export class NotebookDocument {
  readonly notebookType = 'jupyter-notebook';
  constructor(
    readonly uri: Uri,
    private readonly cells: { index: number; kind: NotebookCellKind; document: TextDocument }[],
  ) {}
  get cellCount(): number {
    return this.cells.length;
  }
  getCells(): { index: number; kind: NotebookCellKind; document: TextDocument }[] {
    return [...this.cells];
  }
}

export enum EndOfLine {
  LF = 1,
  CRLF = 2,
}

/** An open document: enough for vscode-languageclient's text synchronisation. */
export class TextDocument {
  version = 1;
  readonly isClosed = false;
  readonly isDirty = false;
  readonly isUntitled = false;
  readonly eol = EndOfLine.LF;
  constructor(
    readonly uri: Uri,
    readonly languageId: string,
    private text: string,
  ) {}
  get fileName(): string {
    return this.uri.fsPath;
  }
  get lineCount(): number {
    return this.text.split('\n').length;
  }
  getText(): string {
    return this.text;
  }
  lineAt(line: number): { text: string } {
    return { text: this.text.split('\n')[line] ?? '' };
  }
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}
export enum ConfigurationTarget {
  Global = 1,
  Workspace = 2,
  WorkspaceFolder = 3,
}
export enum ViewColumn {
  Active = -1,
  Beside = -2,
  One = 1,
}
export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}
export enum LogLevel {
  Off = 0,
  Trace = 1,
  Debug = 2,
  Info = 3,
  Warning = 4,
  Error = 5,
}

export const version = '1.91.0';
export const env = { appName: 'Visual Studio Code', language: 'en', machineId: 'stub', sessionId: 'stub' };

// -- configuration -------------------------------------------------------------------------

const manifest = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8'),
) as { contributes: { configuration: { properties: Record<string, { default?: unknown }> } } };

const defaults: Record<string, unknown> = {};
for (const [key, schema] of Object.entries(manifest.contributes.configuration.properties)) {
  defaults[key] = schema.default;
}

const scopes: Record<'global' | 'workspace' | 'workspaceFolder', Map<string, unknown>> = {
  global: new Map(),
  workspace: new Map(),
  workspaceFolder: new Map(),
};

const documentOpened = new EventEmitter<TextDocument>();
const configurationChanged = new EventEmitter<{ affectsConfiguration(section: string): boolean }>();

function effective(full: string): unknown {
  for (const scope of [scopes.workspaceFolder, scopes.workspace, scopes.global]) {
    if (scope.has(full)) {
      return scope.get(full);
    }
  }
  if (full in defaults) {
    return defaults[full];
  }
  // A section prefix: VS Code returns the nested object of its settings.
  const prefix = full + '.';
  const nested: Record<string, unknown> = {};
  let found = false;
  for (const key of Object.keys(defaults)) {
    if (key.startsWith(prefix)) {
      found = true;
      const parts = key.slice(prefix.length).split('.');
      let node = nested;
      for (const part of parts.slice(0, -1)) {
        node = (node[part] ??= {}) as Record<string, unknown>;
      }
      node[parts[parts.length - 1]] = effective(key);
    }
  }
  return found ? nested : undefined;
}

function setScoped(scope: keyof typeof scopes, full: string, value: unknown): void {
  if (value === undefined) {
    scopes[scope].delete(full);
  } else {
    scopes[scope].set(full, value);
  }
  configurationChanged.fire({
    affectsConfiguration: (section: string) => full === section || full.startsWith(section + '.'),
  });
}

export class WorkspaceConfiguration {
  constructor(private readonly section: string) {}
  private full(key: string): string {
    return this.section ? `${this.section}.${key}` : key;
  }
  get<T>(key: string, fallback?: T): T | undefined {
    const value = effective(this.full(key)) as T | undefined;
    return value === undefined ? fallback : value;
  }
  has(key: string): boolean {
    return effective(this.full(key)) !== undefined;
  }
  inspect<T>(key: string): { key: string; defaultValue?: T; globalValue?: T; workspaceValue?: T; workspaceFolderValue?: T } | undefined {
    const full = this.full(key);
    return {
      key: full,
      defaultValue: defaults[full] as T | undefined,
      globalValue: scopes.global.get(full) as T | undefined,
      workspaceValue: scopes.workspace.get(full) as T | undefined,
      workspaceFolderValue: scopes.workspaceFolder.get(full) as T | undefined,
    };
  }
  async update(key: string, value: unknown, target: ConfigurationTarget | boolean = ConfigurationTarget.Workspace): Promise<void> {
    stub.updates.push({ key: this.full(key), value, target });
    const scope =
      target === ConfigurationTarget.Global || target === true
        ? 'global'
        : target === ConfigurationTarget.WorkspaceFolder
          ? 'workspaceFolder'
          : 'workspace';
    setScoped(scope, this.full(key), value);
  }
  toJSON(): unknown {
    return effective(this.section);
  }
}

export const workspace = {
  workspaceFolders: undefined as { uri: Uri; name: string; index: number }[] | undefined,
  textDocuments: [] as TextDocument[],
  notebookDocuments: [] as NotebookDocument[],
  createFileSystemWatcher: () => ({ onDidCreate: noEvent(), onDidChange: noEvent(), onDidDelete: noEvent(), dispose() {} }),
  getConfiguration: (section?: string) => new WorkspaceConfiguration(section ?? ''),
  onDidChangeConfiguration: configurationChanged.event,
  onDidOpenTextDocument: documentOpened.event,
  onDidChangeTextDocument: noEvent(),
  onDidCloseTextDocument: noEvent(),
  onWillSaveTextDocument: noEvent(),
  onDidSaveTextDocument: noEvent(),
  onDidCreateFiles: noEvent(),
  onDidRenameFiles: noEvent(),
  onDidDeleteFiles: noEvent(),
  onWillCreateFiles: noEvent(),
  onWillRenameFiles: noEvent(),
  onWillDeleteFiles: noEvent(),
  onDidChangeWorkspaceFolders: noEvent(),
  applyEdit: async (edit: unknown) => {
    stub.appliedEdits.push(edit);
    return true;
  },
};

// -- window ----------------------------------------------------------------------------------

export class StatusBarItem {
  text = '';
  name: string | undefined;
  tooltip: unknown;
  command: unknown;
  backgroundColor: ThemeColor | undefined;
  visible = false;
  disposed = false;
  constructor(
    readonly id: string,
    readonly alignment: StatusBarAlignment,
    readonly priority: number,
  ) {}
  show(): void {
    this.visible = true;
  }
  hide(): void {
    this.visible = false;
  }
  dispose(): void {
    this.disposed = true;
  }
}

export class LogOutputChannel {
  readonly lines: string[] = [];
  logLevel = LogLevel.Info;
  shown = 0;
  readonly onDidChangeLogLevel = noEvent();
  constructor(readonly name: string) {}
  private log(level: string, message: string): void {
    this.lines.push(`[${level}] ${message}`);
  }
  trace(message: string): void {
    this.log('trace', message);
  }
  debug(message: string): void {
    this.log('debug', message);
  }
  info(message: string): void {
    this.log('info', message);
  }
  warn(message: string): void {
    this.log('warn', message);
  }
  error(message: unknown): void {
    this.log('error', String(message));
  }
  append(value: string): void {
    this.lines.push(value);
  }
  appendLine(value: string): void {
    this.lines.push(value);
  }
  replace(value: string): void {
    this.lines.splice(0, this.lines.length, value);
  }
  clear(): void {
    this.lines.length = 0;
  }
  show(): void {
    this.shown++;
  }
  hide(): void {}
  dispose(): void {}
}

export class WebviewPanel {
  readonly webview = { html: '', cspSource: 'vscode-resource:', options: {} };
  private readonly disposed = new EventEmitter<void>();
  readonly onDidDispose = this.disposed.event;
  revealed = 0;
  constructor(
    readonly viewType: string,
    public title: string,
    readonly showOptions: unknown,
    readonly options: unknown,
  ) {}
  reveal(): void {
    this.revealed++;
  }
  dispose(): void {
    this.disposed.fire();
  }
}

const activeEditorChanged = new EventEmitter<unknown>();

function message(kind: 'info' | 'warning' | 'error') {
  return async (text: string, ...items: unknown[]): Promise<unknown> => {
    stub.messages.push({ kind, text, items: items.filter((item) => typeof item === 'string') as string[] });
    return undefined;
  };
}

export const window = {
  activeTextEditor: undefined as unknown,
  visibleTextEditors: [] as unknown[],
  onDidChangeVisibleTextEditors: noEvent(),
  tabGroups: { all: [] as unknown[], onDidChangeTabs: noEvent(), onDidChangeTabGroups: noEvent() },
  showTextDocument: async () => undefined,
  onDidChangeActiveTextEditor: activeEditorChanged.event,
  createStatusBarItem: (id: string, alignment: StatusBarAlignment, priority: number) => {
    const item = new StatusBarItem(id, alignment, priority);
    stub.statusBarItems.push(item);
    return item;
  },
  createOutputChannel: (name: string) => {
    const channel = new LogOutputChannel(name);
    stub.outputChannels.push(channel);
    return channel;
  },
  createWebviewPanel: (viewType: string, title: string, showOptions: unknown, options: unknown) => {
    const panel = new WebviewPanel(viewType, title, showOptions, options);
    stub.webviewPanels.push(panel);
    return panel;
  },
  showInformationMessage: message('info'),
  showWarningMessage: message('warning'),
  showErrorMessage: message('error'),
  showQuickPick: async <T extends { label: string }>(items: T[] | Promise<T[]>): Promise<T | undefined> => {
    const list = await items;
    stub.quickPicks.push(list.map((item) => item.label));
    return stub.pickQuickPick(list);
  },
  withProgress: async <R>(
    options: unknown,
    task: (progress: { report(value: unknown): void }, token: { isCancellationRequested: boolean; onCancellationRequested: unknown }) => Promise<R>,
  ): Promise<R> => {
    stub.progress.push(options);
    return task({ report: () => undefined }, { isCancellationRequested: false, onCancellationRequested: noEvent() });
  },
};

// -- commands, languages -----------------------------------------------------------------------

const registered = new Map<string, (...args: unknown[]) => unknown>();

export const commands = {
  registerCommand: (id: string, run: (...args: unknown[]) => unknown): Disposable => {
    if (registered.has(id)) {
      throw new Error(`command '${id}' already exists`);
    }
    registered.set(id, run);
    return new Disposable(() => registered.delete(id));
  },
  executeCommand: async (id: string, ...args: unknown[]): Promise<unknown> => {
    stub.executed.push({ id, args });
    const run = registered.get(id);
    return run === undefined ? stub.builtinCommand(id, args) : run(...args);
  },
  getCommands: async (): Promise<string[]> => [...registered.keys()],
};

const languagesApi: Record<string, unknown> = {
  registerInlineCompletionItemProvider: (selector: unknown, provider: unknown): Disposable => {
    stub.inlineProviders.push({ selector, provider });
    return new Disposable(() => {
      stub.inlineProviders = stub.inlineProviders.filter((p) => p.provider !== provider);
    });
  },
  getDiagnostics: (): unknown[] => [],
  match: (): number => 10,
  createDiagnosticCollection: (name?: string) => {
    const entries = new Map<string, unknown>();
    return {
      name,
      set: (uri: Uri, diagnostics: unknown) => entries.set(uri.toString(), diagnostics),
      delete: (uri: Uri) => entries.delete(uri.toString()),
      clear: () => entries.clear(),
      forEach: () => undefined,
      get: (uri: Uri) => entries.get(uri.toString()),
      has: (uri: Uri) => entries.has(uri.toString()),
      dispose: () => entries.clear(),
    };
  },
};

/** Every other languages.registerXxxProvider: recorded by name, otherwise inert. */
export const languages = new Proxy(languagesApi, {
  get(target, name: string) {
    if (name in target) {
      return target[name];
    }
    if (typeof name === 'string' && name.startsWith('register')) {
      return (..._args: unknown[]) => {
        stub.otherProviders.push(name);
        return new Disposable();
      };
    }
    return undefined;
  },
}) as typeof languagesApi & {
  registerInlineCompletionItemProvider(selector: unknown, provider: unknown): Disposable;
};

// -- test hooks --------------------------------------------------------------------------------

export const stub = {
  executed: [] as { id: string; args: unknown[] }[],
  messages: [] as { kind: string; text: string; items: string[] }[],
  updates: [] as { key: string; value: unknown; target: unknown }[],
  statusBarItems: [] as StatusBarItem[],
  outputChannels: [] as LogOutputChannel[],
  webviewPanels: [] as WebviewPanel[],
  quickPicks: [] as string[][],
  progress: [] as unknown[],
  appliedEdits: [] as unknown[],
  inlineProviders: [] as { selector: unknown; provider: unknown }[],
  otherProviders: [] as string[],
  /** Which quick pick entry the "user" picks (default: none). */
  pickQuickPick: <T>(_items: T[]): T | undefined => undefined,
  /** What a command VS Code itself provides returns (default: nothing). */
  builtinCommand: (_id: string, _args: unknown[]): unknown => undefined,
  registeredCommands: (): string[] => [...registered.keys()],
  setActiveEditor(languageId: string | undefined, uri = '/tmp/stub/file.txt'): void {
    window.activeTextEditor =
      languageId === undefined ? undefined : { document: { languageId, uri: Uri.file(uri) }, selection: new Selection(new Position(0, 0), new Position(0, 0)) };
    activeEditorChanged.fire(window.activeTextEditor);
  },
  /**
   * Open a Jupyter notebook: one `vscode-notebook-cell:` document per cell. Only the cells
   * in `opened` are announced (onDidOpenTextDocument), so a test can tell what the server
   * learns from the notebook context alone.
   */
  openNotebook(fsPath: string, cells: { kind: NotebookCellKind; languageId: string; text: string }[], opened: number[]): NotebookDocument {
    const documents = cells.map(
      (cell, index) => new TextDocument(Uri.from({ scheme: 'vscode-notebook-cell', path: fsPath, fragment: `W${index}sZmlsZQ==` }), cell.languageId, cell.text),
    );
    const notebook = new NotebookDocument(
      Uri.file(fsPath),
      documents.map((document, index) => ({ index, kind: cells[index].kind, document })),
    );
    workspace.notebookDocuments.push(notebook);
    for (const index of opened) {
      workspace.textDocuments.push(documents[index]);
      documentOpened.fire(documents[index]);
    }
    return notebook;
  },
  /** Open a document as VS Code would (fires onDidOpenTextDocument). */
  openDocument(fsPath: string, languageId: string, text: string): TextDocument {
    const document = new TextDocument(Uri.file(fsPath), languageId, text);
    workspace.textDocuments.push(document);
    documentOpened.fire(document);
    return document;
  },
  setSetting(key: string, value: unknown, scope: keyof typeof scopes = 'global'): void {
    setScoped(scope, key, value);
  },
  /** Forget everything recorded and every setting; keeps registered commands (dispose them). */
  reset(): void {
    for (const list of [
      stub.executed,
      stub.messages,
      stub.updates,
      stub.statusBarItems,
      stub.outputChannels,
      stub.webviewPanels,
      stub.quickPicks,
      stub.progress,
      stub.appliedEdits,
      stub.otherProviders,
      workspace.textDocuments,
      workspace.notebookDocuments,
    ] as unknown[][]) {
      list.length = 0;
    }
    for (const scope of Object.values(scopes)) {
      scope.clear();
    }
    stub.inlineProviders = [];
    stub.pickQuickPick = () => undefined;
    stub.builtinCommand = () => undefined;
    window.activeTextEditor = undefined;
    workspace.workspaceFolders = undefined;
  },
};
