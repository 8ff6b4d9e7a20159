/** What the status bar item shows and what its menu offers, from the client's and server's state. */

import type { TriggerMode } from './modes';
import type { StatusParams } from './protocol';

/** The language client's life cycle, as far as the status bar cares. */
export type ClientPhase = 'starting' | 'running' | 'stopped' | 'failed';

export interface Progress {
  title: string;
  message?: string;
  percentage?: number;
}

export interface StatusInputs {
  phase: ClientPhase;
  /** Why the client stopped or failed to start. */
  failure?: string;
  /** The last `copilot/status` of the running server. */
  server?: StatusParams;
  /** Work-done progress the server reports ($/progress), newest last. */
  progress: readonly Progress[];
  /** The active editor's language, when there is one. */
  languageId?: string;
  /** copilotServer.completion.enabled */
  enabled: boolean;
  /** The active language is in copilotServer.completion.disabledLanguages. */
  languageDisabled: boolean;
  /** copilotServer.triggerMode (default automatic). */
  triggerMode?: TriggerMode;
  /** Automatic suggestions are snoozed until then (ms since the epoch). */
  snoozedUntil?: number;
  /** The snooze lengths the menu offers (minutes). */
  snoozeMinutes?: readonly number[];
}

export type Background = 'error' | 'warning';

export interface StatusView {
  text: string;
  /** Markdown (theme icons allowed). */
  tooltip: string;
  command: string;
  background?: Background;
}

export interface MenuItem {
  label: string;
  description?: string;
  command: string;
  args?: unknown[];
}

/** The product's own name and icon (package.json contributes the icon's font): next to
 * GitHub Copilot's item a user must tell the two apart. */
export const NAME = 'copilot-server';
export const ICON = '$(copilot-server-logo)';
const SPIN = '$(loading~spin)';

function clock(ms: number): string {
  const at = new Date(ms);
  return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
}

/** Markdown-escape text that comes from the server (model names, messages). */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (ch) => '\\' + ch);
}

function describeServer(server: StatusParams | undefined): string[] {
  if (server === undefined) {
    return [];
  }
  const lines: string[] = [];
  const model = server.modelName ?? server.model;
  if (model) {
    lines.push(`Model: ${escapeMarkdown(String(model))}`);
  }
  if (server.gpuLayers !== undefined && server.gpuLayers !== null) {
    const offload =
      server.gpuOffloadSupported === false ? ' (this llama.cpp build has no GPU offload)' : '';
    lines.push(`GPU layers: ${escapeMarkdown(String(server.gpuLayers))}${offload}`);
  }
  return lines;
}

function tooltip(headline: string, inputs: StatusInputs, extra: string[] = []): string {
  const lines = [`**copilot-server**: ${headline}`, ...extra, ...describeServer(inputs.server)];
  return lines.join('\n\n');
}

function progressText(progress: Progress): string {
  const pct = progress.percentage !== undefined ? ` ${Math.round(progress.percentage)}%` : '';
  return `${progress.title}${pct}`;
}

export function statusView(inputs: StatusInputs): StatusView {
  const { phase, server } = inputs;
  const message = server?.message ? escapeMarkdown(server.message) : undefined;
  if (phase === 'failed') {
    return {
      text: `$(error) ${NAME}`,
      tooltip: tooltip('could not start', inputs, [escapeMarkdown(inputs.failure ?? 'unknown error'), 'Click for the log.']),
      command: 'copilotServer.showLog',
      background: 'error',
    };
  }
  if (phase === 'stopped') {
    return {
      text: `$(debug-disconnect) ${NAME}`,
      tooltip: tooltip('stopped', inputs, [
        inputs.failure ? escapeMarkdown(inputs.failure) : 'The server is not running.',
        'Click to restart or see the log.',
      ]),
      command: 'copilotServer.showMenu',
      background: 'warning',
    };
  }
  if (phase === 'starting' || server === undefined) {
    return { text: `${SPIN} ${NAME}`, tooltip: tooltip('starting', inputs), command: 'copilotServer.showMenu' };
  }
  if (server.state === 'error') {
    return {
      text: `$(error) ${NAME}`,
      tooltip: tooltip('error', inputs, [message ?? 'see the log', 'Click for the log.']),
      command: 'copilotServer.showLog',
      background: 'error',
    };
  }
  const latest = inputs.progress[inputs.progress.length - 1];
  if (latest !== undefined) {
    return {
      text: `${SPIN} ${NAME}: ${progressText(latest)}`,
      tooltip: tooltip(escapeMarkdown(latest.title), inputs, latest.message ? [escapeMarkdown(latest.message)] : []),
      command: 'copilotServer.showMenu',
    };
  }
  if (server.state === 'loading') {
    return {
      text: `${SPIN} ${NAME}`,
      tooltip: tooltip('loading the model', inputs, message ? [message] : []),
      command: 'copilotServer.showMenu',
    };
  }
  if (!inputs.enabled || server.state === 'disabled') {
    return {
      text: `$(circle-slash) ${NAME}`,
      tooltip: tooltip('completions disabled', inputs, ['Click to enable.']),
      command: 'copilotServer.showMenu',
    };
  }
  if (inputs.languageDisabled) {
    const lang = escapeMarkdown(inputs.languageId ?? '');
    return {
      text: `$(circle-slash) ${NAME}`,
      tooltip: tooltip(`completions disabled for ${lang}`, inputs, ['Click to enable.']),
      command: 'copilotServer.showMenu',
    };
  }
  if (inputs.snoozedUntil !== undefined) {
    return {
      text: `$(clock) ${NAME}`,
      tooltip: tooltip(`suggestions snoozed until ${clock(inputs.snoozedUntil)}`, inputs, ['Alt+\\ still asks for one. Click to resume.']),
      command: 'copilotServer.showMenu',
    };
  }
  const manual = inputs.triggerMode === 'manual' ? ['Suggestions only on Alt+\\ (manual).'] : [];
  if (server.state === 'busy') {
    return { text: `${SPIN} ${NAME}`, tooltip: tooltip('thinking…', inputs, manual), command: 'copilotServer.showMenu' };
  }
  return { text: `${ICON} ${NAME}`, tooltip: tooltip('ready', inputs, manual), command: 'copilotServer.showMenu' };
}

export function menuItems(inputs: StatusInputs): MenuItem[] {
  const items: MenuItem[] = [];
  if (inputs.enabled) {
    items.push({ label: '$(circle-slash) Disable completions', command: 'copilotServer.disable' });
  } else {
    items.push({ label: '$(check) Enable completions', command: 'copilotServer.enable' });
  }
  if (inputs.languageId !== undefined) {
    const verb = inputs.languageDisabled ? 'Enable' : 'Disable';
    items.push({
      label: `$(symbol-namespace) ${verb} completions for ${inputs.languageId}`,
      command: 'copilotServer.toggleLanguage',
    });
  }
  if (inputs.enabled) {
    if (inputs.snoozedUntil !== undefined) {
      items.push({ label: '$(play) Resume suggestions', description: `snoozed until ${clock(inputs.snoozedUntil)}`, command: 'copilotServer.resume' });
    } else {
      for (const minutes of inputs.snoozeMinutes ?? []) {
        items.push({ label: `$(clock) Snooze for ${minutes} minutes`, command: 'copilotServer.snooze', args: [minutes] });
      }
    }
    items.push(
      inputs.triggerMode === 'manual'
        ? { label: '$(zap) Suggest while typing', description: 'now: only on Alt+\\', command: 'copilotServer.toggleTriggerMode' }
        : { label: '$(keyboard) Suggest only on Alt+\\', description: 'manual', command: 'copilotServer.toggleTriggerMode' },
    );
  }
  items.push(
    { label: '$(output) Show log', command: 'copilotServer.showLog' },
    {
      label: inputs.phase === 'running' ? '$(debug-restart) Restart server' : '$(debug-start) Start server',
      command: 'copilotServer.restart',
    },
    { label: '$(settings-gear) Open settings', command: 'copilotServer.openSettings' },
  );
  return items;
}
