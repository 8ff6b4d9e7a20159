/**
 * The `copilotServer.*` settings: which ones the server gets, in what shape, and when.
 *
 * VS Code keys mirror the server's config.py in camelCase (`completion.maxTokens` is
 * `completion.max_tokens`); the server accepts camelCase. Only settings the user set are
 * sent, so a value from the server's own config file still applies where VS Code has none.
 * The server merges what it receives over its current settings, so a setting the user
 * removes is sent once more at its default: that resets it.
 */

/** How a VS Code value becomes the server's value. */
export type Conversion = 'value' | 'emptyIsNull' | 'zeroIsNull' | 'gpuLayers';

export const SECTION = 'copilotServer';

/** Every server setting the extension contributes, keyed as in package.json (without the section). */
export const SERVER_SETTINGS: Readonly<Record<string, Conversion>> = {
  'model.path': 'emptyIsNull',
  'model.profile': 'value',
  'model.nGpuLayers': 'gpuLayers',
  'model.nCtx': 'value',
  'model.nBatch': 'value',
  'model.threads': 'zeroIsNull',
  'model.template': 'value',
  'engine.kind': 'value',
  'engine.url': 'emptyIsNull',
  'engine.modelName': 'emptyIsNull',
  'engine.apiKeyEnv': 'value',
  'engine.timeoutS': 'value',
  'engine.retries': 'value',
  'engine.hostIdleS': 'value',
  'engine.hostSavedStates': 'value',
  'completion.enabled': 'value',
  'completion.disabledLanguages': 'value',
  'completion.maxTokens': 'value',
  'completion.maxLines': 'value',
  'completion.maxLineChars': 'value',
  'completion.allowSecretFilesRemote': 'value',
  'completion.modelWaitS': 'value',
  'completion.cacheSize': 'value',
  'completion.temperature': 'value',
  'completion.alternatives': 'value',
  'context.prefixTokens': 'value',
  'context.suffixTokens': 'value',
  'context.scopeTokens': 'value',
  'context.importTokens': 'value',
  'context.definitionTokens': 'value',
  'context.snippetTokens': 'value',
  'context.indexEnabled': 'value',
  'context.indexMaxFiles': 'value',
  'context.indexMaxFileBytes': 'value',
  'nextEdit.enabled': 'value',
  'nextEdit.propagation': 'value',
  'nextEdit.model': 'value',
  'nextEdit.windowLines': 'value',
  'nextEdit.maxTokens': 'value',
  'nextEdit.draftTokens': 'value',
  explainMaxTokens: 'value',
  fixMaxTokens: 'value',
  logLevel: 'value',
};

/** Settings only the extension reads; the server would reject them as unknown. */
export const CLIENT_SETTINGS: readonly string[] = ['serverPath', 'serverArgs', 'trace.server', 'triggerMode'];

/**
 * Server settings only the user may set (the server's config.USER_ONLY_KEYS: where code and
 * API keys go, which model file is parsed): `"scope": "machine"` in package.json, so a
 * cloned repository's `.vscode/settings.json` cannot set them, and sent only in
 * initializationOptions and `copilot.reloadModel`, never as the project's settings.
 */
export function isMachineSetting(key: string): boolean {
  if (key === 'engine.timeoutS' || key === 'engine.retries') {
    return false; // harmless from a project: how long to wait, how often to retry
  }
  return key.startsWith('model.') || key.startsWith('engine.') || key === 'completion.allowSecretFilesRemote';
}

export const MACHINE_SETTINGS: readonly string[] = Object.keys(SERVER_SETTINGS).filter(isMachineSetting);

/** Which settings a payload carries: all (initialize), the project's, or the user's own. */
export type PayloadScope = 'all' | 'project' | 'machine';

/** Changing one of these needs a new server process. */
export const RESTART_SETTINGS: readonly string[] = ['serverPath', 'serverArgs'];

/** The part of vscode.WorkspaceConfiguration.inspect() we use. */
export interface SettingInspection<T = unknown> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

/** The part of vscode.WorkspaceConfiguration we use (for section `copilotServer`). */
export interface ConfigurationLike {
  get<T>(key: string): T | undefined;
  inspect<T>(key: string): SettingInspection<T> | undefined;
}

export type Target = 'global' | 'workspace' | 'workspaceFolder';

/** "auto", "all", "-1" or a layer count; numbers go to the server as numbers. */
export function parseGpuLayers(value: unknown): string | number {
  if (typeof value === 'number' && Number.isInteger(value)) {
    return value;
  }
  const text = String(value ?? '').trim().toLowerCase();
  if (/^-?\d+$/.test(text)) {
    return Number(text);
  }
  return text === '' ? 'auto' : text; // anything else: the server names the bad value
}

export function toServerValue(conversion: Conversion, value: unknown): unknown {
  switch (conversion) {
    case 'emptyIsNull':
      return typeof value === 'string' && value.trim() === '' ? null : value ?? null;
    case 'zeroIsNull':
      return value === 0 || value === undefined || value === null ? null : value;
    case 'gpuLayers':
      return parseGpuLayers(value);
    case 'value':
      return value;
  }
}

/** Whether the user (or workspace) set this setting, rather than leaving the default. */
export function isExplicit(inspection: SettingInspection | undefined): boolean {
  return (
    inspection !== undefined &&
    (inspection.globalValue !== undefined ||
      inspection.workspaceValue !== undefined ||
      inspection.workspaceFolderValue !== undefined)
  );
}

/** {"a.b": 1, "c": 2} -> {a: {b: 1}, c: 2} */
export function nest(flat: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flat)) {
    const parts = key.split('.');
    let node = out;
    for (const part of parts.slice(0, -1)) {
      if (typeof node[part] !== 'object' || node[part] === null) {
        node[part] = {};
      }
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = value;
  }
  return out;
}

/** Where a change made by a command should go: the most specific scope that has a value. */
export function targetFor(inspection: SettingInspection | undefined): Target {
  if (inspection?.workspaceFolderValue !== undefined) {
    return 'workspaceFolder';
  }
  if (inspection?.workspaceValue !== undefined) {
    return 'workspace';
  }
  return 'global';
}

/** The disabled-language list with `languageId` added or removed. */
export function toggleLanguage(disabled: readonly string[] | undefined, languageId: string): string[] {
  const list = [...(disabled ?? [])];
  const at = list.indexOf(languageId);
  if (at >= 0) {
    list.splice(at, 1);
  } else {
    list.push(languageId);
  }
  return list;
}

/** The settings payload for one server process (initializationOptions, pulls and pushes). */
export class ServerSettings {
  private readonly sent = new Set<string>();

  constructor(private readonly read: () => ConfigurationLike) {}

  /** The nested `copilotServer` object: what the user set, plus resets of what they unset. */
  payload(scope: PayloadScope = 'all'): Record<string, unknown> {
    const config = this.read();
    const flat: Record<string, unknown> = {};
    for (const [key, conversion] of Object.entries(SERVER_SETTINGS)) {
      if ((scope === 'project' && isMachineSetting(key)) || (scope === 'machine' && !isMachineSetting(key))) {
        continue;
      }
      const inspection = config.inspect(key);
      if (isExplicit(inspection)) {
        flat[key] = toServerValue(conversion, config.get(key));
        this.sent.add(key);
      } else if (this.sent.has(key)) {
        flat[key] = toServerValue(conversion, inspection?.defaultValue);
        this.sent.delete(key);
      }
    }
    return nest(flat);
  }

  /** A new server process starts from its own defaults: nothing was sent to it yet. */
  reset(): void {
    this.sent.clear();
  }
}

/**
 * The answer to one `workspace/configuration` item: our payload for `copilotServer` (or a
 * part of it for `copilotServer.completion`), `ours: false` for any other section.
 */
export function configurationItem(
  section: string | undefined,
  payload: () => Record<string, unknown>,
): { ours: true; value: unknown } | { ours: false } {
  if (section === SECTION) {
    return { ours: true, value: payload() };
  }
  if (section !== undefined && section.startsWith(SECTION + '.')) {
    let node: unknown = payload();
    for (const part of section.slice(SECTION.length + 1).split('.')) {
      node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[part] : undefined;
    }
    return { ours: true, value: node ?? null };
  }
  return { ours: false };
}
