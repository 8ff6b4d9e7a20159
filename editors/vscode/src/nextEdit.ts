/**
 * Next edit suggestions: after an edit and a pause, copilot-server is asked for the edit
 * that should follow it anywhere in the file (`textDocument/copilotInlineEdit`, the request
 * GitHub's copilot-language-server answers). It shows as a decoration: the text it replaces
 * struck through, the new text after it. Tab jumps to it and, pressed there, applies it in
 * one undo step; Escape or typing dismisses it. The same edit is offered as a quick fix.
 */

import * as vscode from 'vscode';
import { ExecuteCommandRequest, type LanguageClient } from 'vscode-languageclient/node';

export const INLINE_EDIT_METHOD = 'textDocument/copilotInlineEdit';
/** Context key: a next edit is shown in the active editor (Tab and Escape are ours then). */
export const SHOWN_CONTEXT = 'copilotServer.nextEditShown';
export const JUMP_OR_APPLY_COMMAND = 'copilotServer.nextEdit.jumpOrApply';
export const DISMISS_COMMAND = 'copilotServer.nextEdit.dismiss';
/** Ask this long after the last change: a burst of typing costs one request. */
const DEBOUNCE_MS = 400;

interface WirePosition {
  line: number;
  character: number;
}

/** One edit of the server's answer, as copilot-language-server shapes it. */
export interface WireEdit {
  range: { start: WirePosition; end: WirePosition };
  text: string;
  textDocument: { uri: string; version: number };
  command?: { title: string; command: string; arguments?: unknown[] };
}

export interface ShownEdit {
  uri: string;
  version: number;
  range: vscode.Range;
  text: string;
  command?: WireEdit['command'];
}

/** The new text as one line for the decoration: its first line, and `…` for the rest. */
export function previewText(text: string): string {
  const lines = text.split('\n');
  return lines.length > 1 ? `${lines[0]} …` : lines[0];
}

/** The first edit of an answer, if it is for this document version. */
export function editFor(answer: unknown, uri: string, version: number): ShownEdit | undefined {
  const edits = (answer as { edits?: WireEdit[] } | null | undefined)?.edits;
  const edit = Array.isArray(edits) ? edits[0] : undefined;
  if (edit === undefined || edit.textDocument?.uri !== uri || edit.textDocument.version !== version) {
    return undefined;
  }
  const { start, end } = edit.range;
  return {
    uri,
    version,
    range: new vscode.Range(start.line, start.character, end.line, end.character),
    text: edit.text,
    command: edit.command,
  };
}

/** Whether the cursor sits where the edit starts (Tab then applies instead of jumping). */
export function cursorAtEdit(cursor: vscode.Position, edit: ShownEdit): boolean {
  return cursor.line === edit.range.start.line && cursor.character === edit.range.start.character;
}

export class NextEdits implements vscode.Disposable {
  private shown: ShownEdit | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private pending: vscode.CancellationTokenSource | undefined;
  private decorations: { removed: vscode.TextEditorDecorationType; added: vscode.TextEditorDecorationType } | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly client: () => LanguageClient | undefined) {
    this.disposables.push(
      vscode.workspace.onDidChangeTextDocument((event) => this.changed(event)),
      vscode.languages.registerCodeActionsProvider(
        { scheme: 'file' },
        { provideCodeActions: (document, range) => this.codeActions(document, range) },
        { providedCodeActionKinds: [vscode.CodeActionKind.QuickFix] },
      ),
    );
  }

  /** A change in the active editor: the shown edit is stale; ask again after a pause. */
  private changed(event: vscode.TextDocumentChangeEvent): void {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined || event.document !== editor.document || event.contentChanges.length === 0) {
      return;
    }
    this.dismiss();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.request(editor), DEBOUNCE_MS);
  }

  async request(editor: vscode.TextEditor): Promise<void> {
    const client = this.client();
    if (client === undefined) {
      return;
    }
    this.pending?.cancel();
    const source = new vscode.CancellationTokenSource();
    this.pending = source;
    const { document } = editor;
    const uri = client.code2ProtocolConverter.asUri(document.uri);
    const version = document.version;
    let answer: unknown;
    try {
      answer = await client.sendRequest(
        INLINE_EDIT_METHOD,
        { textDocument: { uri, version }, position: client.code2ProtocolConverter.asPosition(editor.selection.active) },
        source.token,
      );
    } catch {
      return; // cancelled by a newer request, or the server has none to give
    }
    if (source.token.isCancellationRequested || document.version !== version || vscode.window.activeTextEditor !== editor) {
      return;
    }
    const edit = editFor(answer, uri, version);
    if (edit !== undefined) {
      this.show(editor, edit);
    }
  }

  private show(editor: vscode.TextEditor, edit: ShownEdit): void {
    this.decorations ??= {
      removed: vscode.window.createTextEditorDecorationType({
        backgroundColor: new vscode.ThemeColor('diffEditor.removedTextBackground'),
        textDecoration: 'line-through',
      }),
      added: vscode.window.createTextEditorDecorationType({
        after: {
          backgroundColor: new vscode.ThemeColor('diffEditor.insertedTextBackground'),
          margin: '0 0 0 0.2em',
        },
      }),
    };
    this.shown = edit;
    editor.setDecorations(this.decorations.removed, edit.range.isEmpty ? [] : [edit.range]);
    editor.setDecorations(this.decorations.added, [
      {
        range: new vscode.Range(edit.range.end, edit.range.end),
        renderOptions: { after: { contentText: previewText(edit.text) } },
        hoverMessage: new vscode.MarkdownString().appendCodeblock(edit.text, editor.document.languageId),
      },
    ]);
    void vscode.commands.executeCommand('setContext', SHOWN_CONTEXT, true);
  }

  /** Tab: jump to the edit; at the edit, apply it. */
  async jumpOrApply(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const edit = this.shown;
    if (editor === undefined || edit === undefined || editor.document.version !== edit.version) {
      this.dismiss();
      return;
    }
    if (!cursorAtEdit(editor.selection.active, edit)) {
      editor.selection = new vscode.Selection(edit.range.start, edit.range.start);
      editor.revealRange(edit.range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      return;
    }
    this.dismiss();
    // One replace in one edit(): one undo step.
    if (await editor.edit((builder) => builder.replace(edit.range, edit.text))) {
      await this.accepted(edit);
    }
  }

  private async accepted(edit: ShownEdit): Promise<void> {
    const client = this.client();
    if (client !== undefined && edit.command !== undefined) {
      await client.sendRequest(ExecuteCommandRequest.type, {
        command: edit.command.command,
        arguments: edit.command.arguments ?? [],
      });
    }
  }

  dismiss(): void {
    this.shown = undefined;
    const editor = vscode.window.activeTextEditor;
    if (this.decorations !== undefined && editor !== undefined) {
      editor.setDecorations(this.decorations.removed, []);
      editor.setDecorations(this.decorations.added, []);
    }
    void vscode.commands.executeCommand('setContext', SHOWN_CONTEXT, false);
  }

  /** The shown edit as a quick fix where the light bulb is asked about its lines. */
  private codeActions(document: vscode.TextDocument, range: vscode.Range): vscode.CodeAction[] {
    const edit = this.shown;
    if (edit === undefined || document.version !== edit.version || document.uri.toString() !== vscode.Uri.parse(edit.uri).toString()) {
      return [];
    }
    const lines = new vscode.Range(edit.range.start.line, 0, edit.range.end.line + 1, 0);
    if (range.intersection(lines) === undefined) {
      return [];
    }
    const action = new vscode.CodeAction(`Apply next edit: ${previewText(edit.text) || 'delete'}`, vscode.CodeActionKind.QuickFix);
    action.edit = new vscode.WorkspaceEdit();
    action.edit.replace(document.uri, edit.range, edit.text);
    action.isPreferred = true;
    if (edit.command !== undefined) {
      // The server's own command (the language client registers those): it counts the accept.
      action.command = { title: edit.command.title, command: edit.command.command, arguments: edit.command.arguments };
    }
    return [action];
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.pending?.cancel();
    this.decorations?.removed.dispose();
    this.decorations?.added.dispose();
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}
