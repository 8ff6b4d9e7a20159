/** The server's custom LSP surface (see docs/HELPERS.md, "LSP contract for editor clients"). */

/** Notification: the server's state, sent on every change. */
export const STATUS_NOTIFICATION = 'copilot/status';
/** Notification: an explanation is ready (also sent when Explain ran from a code action). */
export const EXPLANATION_NOTIFICATION = 'copilot/explanation';

/** Server commands (workspace/executeCommand). */
export const EXPLAIN_COMMAND = 'copilot.explain';
export const STATUS_COMMAND = 'copilot.status';
export const ACCEPTED_COMMAND = 'copilot.acceptedSuggestion';

export type ServerState = 'loading' | 'ready' | 'busy' | 'error' | 'disabled';

export interface StatusParams {
  state: ServerState;
  message?: string | null;
  model?: string | null;
  modelName?: string | null;
  gpuLayers?: number | string | null;
  gpuOffloadSupported?: boolean | null;
  enabled?: boolean;
}

export interface WireRange {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

export interface ExplainArgs {
  uri: string;
  range: WireRange;
}

export interface ExplainResult {
  markdown: string;
  tokens?: number;
  promptTokens?: number;
  latencyMs?: number;
}

export interface ExplanationParams extends ExplainResult {
  uri: string;
  range: WireRange;
}

const STATES: readonly string[] = ['loading', 'ready', 'busy', 'error', 'disabled'];

/** A `copilot/status` payload we can show, or undefined for anything malformed. */
export function parseStatus(params: unknown): StatusParams | undefined {
  if (typeof params !== 'object' || params === null) {
    return undefined;
  }
  const state = (params as { state?: unknown }).state;
  if (typeof state !== 'string' || !STATES.includes(state)) {
    return undefined;
  }
  return params as StatusParams;
}
