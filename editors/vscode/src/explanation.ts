/** Explain: ask the server for an explanation of the selection and show it in a webview panel. */

import * as path from 'node:path';

import * as vscode from 'vscode';
import { ExecuteCommandRequest, type LanguageClient } from 'vscode-languageclient/node';

import { EXPLAIN_COMMAND, type ExplainResult, type ExplanationParams, type WireRange } from './protocol';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** A title such as "Explain: main.py:3-9" (1-based lines, as the editor shows them). */
export function explanationTitle(uri: string, range: WireRange): string {
  let name = uri;
  try {
    name = path.posix.basename(decodeURIComponent(new URL(uri).pathname)) || uri;
  } catch {
    // not a URL: keep it as it is
  }
  const first = range.start.line + 1;
  const last = range.end.line + 1;
  return `Explain: ${name}:${first === last ? first : `${first}-${last}`}`;
}

/** A footer such as "42 tokens · 1.3 s"; empty when the server sent no numbers. */
export function explanationFooter(result: ExplainResult): string {
  const parts: string[] = [];
  if (typeof result.tokens === 'number') {
    parts.push(`${result.tokens} tokens`);
  }
  if (typeof result.latencyMs === 'number') {
    parts.push(`${(result.latencyMs / 1000).toFixed(1)} s`);
  }
  return parts.join(' · ');
}

/**
 * The whole webview document. Scripts are off and the content security policy allows no
 * script, so model output rendered as HTML cannot run anything.
 */
export function explanationHtml(title: string, bodyHtml: string, footer: string, cspSource: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'unsafe-inline'; img-src ${cspSource} https: data:;">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); padding: 0 1em; line-height: 1.5; }
  code, pre { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); }
  pre { background: var(--vscode-textCodeBlock-background); padding: 0.5em; overflow-x: auto; white-space: pre-wrap; }
  .footer { color: var(--vscode-descriptionForeground); font-size: 0.9em; margin-top: 1.5em; }
</style>
</head>
<body>
<h3>${escapeHtml(title)}</h3>
${bodyHtml}
${footer ? `<div class="footer">${escapeHtml(footer)}</div>` : ''}
</body>
</html>`;
}

/** Markdown to HTML with VS Code's own renderer (the built-in Markdown extension), else as text. */
async function renderMarkdown(markdown: string): Promise<string> {
  try {
    const html = await vscode.commands.executeCommand<string>('markdown.api.render', markdown);
    if (typeof html === 'string') {
      return html;
    }
  } catch {
    // the Markdown extension is disabled: fall through
  }
  return `<pre>${escapeHtml(markdown)}</pre>`;
}

export class ExplanationPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private shownKey: string | undefined;

  /** Shows "Explaining…" while the server works. */
  pending(title: string): void {
    this.shownKey = undefined;
    this.render(title, '<p><em>Explaining…</em></p>', '');
  }

  async show(uri: string, range: WireRange, result: ExplainResult): Promise<void> {
    const title = explanationTitle(uri, range);
    // The server answers the command and also sends copilot/explanation: show it once.
    const key = `${uri}\n${result.markdown}`;
    if (key === this.shownKey && this.panel !== undefined) {
      return;
    }
    this.shownKey = key;
    this.render(title, await renderMarkdown(result.markdown), explanationFooter(result));
  }

  /** A plain message instead of an explanation (cancelled, failed). */
  message(title: string, text: string): void {
    this.shownKey = undefined;
    this.render(title, `<p><em>${escapeHtml(text)}</em></p>`, '');
  }

  private render(title: string, bodyHtml: string, footer: string): void {
    if (this.panel === undefined) {
      this.panel = vscode.window.createWebviewPanel(
        'copilotServer.explanation',
        title,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: false, enableFindWidget: true },
      );
      this.panel.onDidDispose(() => {
        this.panel = undefined;
        this.shownKey = undefined;
      });
    } else {
      this.panel.reveal(undefined, true);
    }
    this.panel.title = title;
    this.panel.webview.html = explanationHtml(title, bodyHtml, footer, this.panel.webview.cspSource);
  }

  dispose(): void {
    this.panel?.dispose();
  }
}

/** The `copilot/explanation` notification (Explain picked from the light bulb). */
export function isExplanation(params: unknown): params is ExplanationParams {
  const p = params as Partial<ExplanationParams> | undefined;
  return typeof p?.uri === 'string' && typeof p.markdown === 'string' && typeof p.range === 'object';
}

/** copilotServer.explain: the selection, or with none the enclosing function (the server picks). */
export async function explainSelection(client: LanguageClient, panel: ExplanationPanel): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    void vscode.window.showInformationMessage('Copilot Server: open a file and select the code to explain.');
    return;
  }
  const uri = client.code2ProtocolConverter.asUri(editor.document.uri);
  const range: WireRange = client.code2ProtocolConverter.asRange(editor.selection);
  panel.pending(explanationTitle(uri, range));
  const outcome = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Copilot Server: explaining…', cancellable: true },
    async (_progress, token) => {
      try {
        const params = { command: EXPLAIN_COMMAND, arguments: [{ uri, range }] };
        return { result: (await client.sendRequest(ExecuteCommandRequest.type, params, token)) as unknown };
      } catch (error) {
        return { error: token.isCancellationRequested ? undefined : error };
      }
    },
  );
  if ('error' in outcome) {
    const message = outcome.error === undefined ? 'Cancelled.' : errorMessage(outcome.error);
    panel.message(explanationTitle(uri, range), message);
    if (outcome.error !== undefined) {
      void vscode.window.showErrorMessage(`Copilot Server: explain failed: ${message}`);
    }
    return;
  }
  const result = outcome.result as ExplainResult | null;
  if (result && typeof result.markdown === 'string') {
    await panel.show(uri, range, result);
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
