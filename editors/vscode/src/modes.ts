/**
 * When suggestions are asked for: while typing (automatic) or only on Alt+\ (manual), and
 * a snooze of the automatic ones for a while. An explicit request (Alt+\, VS Code's own
 * `editor.action.inlineSuggest.trigger`, or cycling with Alt+] / Alt+[) always goes out.
 */

import * as vscode from 'vscode';

import { SECTION } from './settings';

export type TriggerMode = 'automatic' | 'manual';

/** The snooze lengths the status menu offers, in minutes. */
export const SNOOZE_MINUTES: readonly number[] = [5, 30, 60];

/** Whether an inline completion request goes to the server. */
export function allowsRequest(mode: TriggerMode, snoozedUntil: number | undefined, now: number, invoked: boolean): boolean {
  if (invoked) {
    return true;
  }
  if (mode === 'manual') {
    return false;
  }
  return snoozedUntil === undefined || now >= snoozedUntil;
}

export function triggerModeOf(value: unknown): TriggerMode {
  return value === 'manual' ? 'manual' : 'automatic';
}

export class SuggestionModes implements vscode.Disposable {
  private until: number | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly now: () => number = Date.now) {}

  get triggerMode(): TriggerMode {
    return triggerModeOf(vscode.workspace.getConfiguration(SECTION).get<string>('triggerMode'));
  }

  /** When the snooze ends (ms since the epoch), or undefined when not snoozed. */
  get snoozedUntil(): number | undefined {
    if (this.until !== undefined && this.now() >= this.until) {
      this.until = undefined;
    }
    return this.until;
  }

  snooze(minutes: number): void {
    this.until = this.now() + minutes * 60_000;
    this.schedule(minutes * 60_000);
    this.changed.fire();
  }

  resume(): void {
    this.until = undefined;
    this.schedule(undefined);
    this.changed.fire();
  }

  allows(context: { triggerKind: vscode.InlineCompletionTriggerKind }): boolean {
    const invoked = context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke;
    return allowsRequest(this.triggerMode, this.snoozedUntil, this.now(), invoked);
  }

  /** The status bar shows the snooze: refresh it when the snooze ends by itself. */
  private schedule(ms: number | undefined): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (ms !== undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        // Timers run on a monotonic clock and `now()` reads the wall clock: a timer may fire
        // a moment before the snooze ends by `now()`, and the status would keep the clock.
        const left = this.until === undefined ? 0 : this.until - this.now();
        if (left > 0) {
          this.schedule(left);
          return;
        }
        this.changed.fire();
      }, ms);
      this.timer.unref?.();
    }
  }

  dispose(): void {
    this.schedule(undefined);
    this.changed.dispose();
  }
}
