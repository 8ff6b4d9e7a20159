/**
 * copilotServer.fix: ask the server for its quick fixes at the cursor, let the user pick one,
 * resolve it (this is when the model runs) and apply the edit. The same fixes also show in
 * the light bulb, where VS Code resolves them itself.
 */

import * as vscode from 'vscode';
import {
  type CodeAction,
  CodeActionKind,
  CodeActionRequest,
  CodeActionResolveRequest,
  CodeActionTriggerKind,
  type Command,
  ExecuteCommandRequest,
  type LanguageClient,
} from 'vscode-languageclient/node';

import { errorMessage } from './explanation';

/** Our quick fixes among a code action answer (commands and other kinds left out). */
export function quickFixes(answer: readonly (Command | CodeAction)[] | null | undefined): CodeAction[] {
  // A bare Command has a string `command`; an unresolved CodeAction has neither edit nor command yet.
  return (answer ?? []).filter(
    (item): item is CodeAction =>
      typeof item.command !== 'string' &&
      typeof (item as CodeAction).kind === 'string' &&
      (item as CodeAction).kind!.split('.')[0] === CodeActionKind.QuickFix,
  );
}

export async function fixAtCursor(client: LanguageClient): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    void vscode.window.showInformationMessage('Copilot Server: open a file and put the cursor on the code to fix.');
    return;
  }
  const { document, selection } = editor;
  const lines = new vscode.Range(selection.start.line, 0, selection.end.line, document.lineAt(selection.end.line).text.length);
  const diagnostics = vscode.languages.getDiagnostics(document.uri).filter((d) => d.range.intersection(lines) !== undefined);
  const c2p = client.code2ProtocolConverter;
  const answer = await client.sendRequest(CodeActionRequest.type, {
    textDocument: { uri: c2p.asUri(document.uri) },
    range: c2p.asRange(selection),
    context: {
      diagnostics: c2p.asDiagnosticsSync(diagnostics),
      only: [CodeActionKind.QuickFix],
      triggerKind: CodeActionTriggerKind.Invoked,
    },
  });
  const fixes = quickFixes(answer);
  if (fixes.length === 0) {
    void vscode.window.showInformationMessage(
      'Copilot Server: nothing to fix here (no syntax error or diagnostic on these lines).',
    );
    return;
  }
  let chosen = fixes[0];
  if (fixes.length > 1) {
    const picked = await vscode.window.showQuickPick(
      fixes.map((fix) => ({ label: fix.title, fix })),
      { title: 'Copilot Server: Fix' },
    );
    if (picked === undefined) {
      return;
    }
    chosen = picked.fix;
  }
  const outcome = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Copilot Server: fixing…', cancellable: true },
    async (_progress, token) => {
      try {
        return { action: await client.sendRequest(CodeActionResolveRequest.type, chosen, token) };
      } catch (error) {
        return { error: token.isCancellationRequested ? undefined : error };
      }
    },
  );
  if ('error' in outcome) {
    if (outcome.error !== undefined) {
      void vscode.window.showErrorMessage(`Copilot Server: fix failed: ${errorMessage(outcome.error)}`);
    }
    return;
  }
  const resolved = outcome.action;
  if (resolved.disabled !== undefined) {
    void vscode.window.showInformationMessage(`Copilot Server: ${resolved.disabled.reason}`);
    return;
  }
  if (resolved.edit !== undefined) {
    const edit = await client.protocol2CodeConverter.asWorkspaceEdit(resolved.edit);
    if (!(await vscode.workspace.applyEdit(edit))) {
      void vscode.window.showWarningMessage('Copilot Server: the fix could not be applied (the file changed?).');
    }
  } else if (resolved.command !== undefined) {
    await client.sendRequest(ExecuteCommandRequest.type, {
      command: resolved.command.command,
      arguments: resolved.command.arguments,
    });
  }
}
