/**
 * Jupyter notebooks: each cell reaches the server as its own text document (a
 * `vscode-notebook-cell:` URI), so before a suggestion in a cell the extension tells the
 * server the notebook's other code cells, in order (`copilot/notebookContext`); the server
 * shows them to the model as context (copilot_server/context/notebooks.py).
 */

import * as vscode from 'vscode';

export const NOTEBOOK_CELL_SCHEME = 'vscode-notebook-cell';
export const NOTEBOOK_CONTEXT_NOTIFICATION = 'copilot/notebookContext';

/** Characters sent each way, nearest cells first; the server trims to its token budget. */
export const MAX_CONTEXT_CHARS = 24_000;

export interface NotebookContextParams {
  /** The cell's document URI, as in textDocument/didOpen. */
  uri: string;
  notebook: string;
  /** Code cells above, in notebook order. */
  before: string[];
  /** Code cells below, in notebook order. */
  after: string[];
}

export interface CellLike {
  code: boolean;
  languageId: string;
  text: string;
}

function nearest(cells: readonly CellLike[], languageId: string, maxChars: number): string[] {
  const out: string[] = [];
  let used = 0;
  for (const cell of cells) {
    if (!cell.code || cell.languageId !== languageId || cell.text.trim() === '') {
      continue;
    }
    if (used + cell.text.length > maxChars) {
      break;
    }
    out.push(cell.text);
    used += cell.text.length;
  }
  return out;
}

/** The code cells of the cell's language around `index`: the nearest within `maxChars`
 * each way, returned in notebook order. */
export function cellsAround(
  cells: readonly CellLike[],
  index: number,
  maxChars = MAX_CONTEXT_CHARS,
): { before: string[]; after: string[] } {
  const languageId = cells[index].languageId;
  const before = nearest([...cells.slice(0, index)].reverse(), languageId, maxChars).reverse();
  const after = nearest(cells.slice(index + 1), languageId, maxChars);
  return { before, after };
}

/** The context for a cell document, or undefined when it is not a cell of an open notebook. */
export function notebookContext(document: vscode.TextDocument): NotebookContextParams | undefined {
  if (document.uri.scheme !== NOTEBOOK_CELL_SCHEME) {
    return undefined;
  }
  const uri = document.uri.toString();
  for (const notebook of vscode.workspace.notebookDocuments) {
    const cells = notebook.getCells();
    const index = cells.findIndex((cell) => cell.document.uri.toString() === uri);
    if (index < 0) {
      continue;
    }
    const plain = cells.map((cell) => ({
      code: cell.kind === vscode.NotebookCellKind.Code,
      languageId: cell.document.languageId,
      text: cell.document.getText(),
    }));
    return { uri, notebook: notebook.uri.toString(), ...cellsAround(plain, index) };
  }
  return undefined;
}

/** Sends a cell's context before its suggestion, once per change of the other cells. */
export class NotebookContextSender {
  private readonly last = new Map<string, string>();

  constructor(private readonly send: (params: NotebookContextParams) => Promise<void>) {}

  async beforeRequest(document: vscode.TextDocument): Promise<void> {
    const params = notebookContext(document);
    if (params === undefined) {
      return;
    }
    const key = JSON.stringify(params);
    if (this.last.get(params.uri) === key) {
      return; // the server has it already
    }
    this.last.set(params.uri, key);
    await this.send(params);
  }

  /** A new server process knows nothing yet. */
  reset(): void {
    this.last.clear();
  }
}
