/**
 * The settings in package.json mirror the server's config.py: same keys, same defaults, same
 * bounds. Read from the real server's pydantic model, so a knob added or changed there shows
 * up here as a failure that names it.
 */

import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { isMachineSetting, SECTION, SERVER_SETTINGS, toServerValue } from '../src/settings';
import { requireFile, serverPython } from './server';

interface ServerField {
  default: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  enum?: unknown[];
  userOnly?: boolean;
}

interface Contributed {
  type: string | string[];
  default: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  enum?: unknown[];
  scope?: string;
}

const DUMP = `
import json, typing
from pydantic import BaseModel
from copilot_server.config import Settings
try:
    from copilot_server.config import is_user_only
except ImportError:  # a server without user-only settings
    is_user_only = None

BOUNDS = (("ge", "minimum"), ("le", "maximum"), ("gt", "exclusiveMinimum"), ("lt", "exclusiveMaximum"))

def walk(model, prefix):
    out = {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.update(walk(ann, prefix + name + "."))
            continue
        info = {"default": field.get_default(call_default_factory=True)}
        for meta in field.metadata:
            for attr, key in BOUNDS:
                if getattr(meta, attr, None) is not None:
                    info[key] = getattr(meta, attr)
        if typing.get_origin(ann) is typing.Literal:
            info["enum"] = list(typing.get_args(ann))
        if is_user_only is not None:
            info["userOnly"] = is_user_only(prefix + name)
        out[prefix + name] = info
    return out

print(json.dumps(walk(Settings, "")))
`;

/** The server's own spelling of a camelCase key (config.py's _camel_to_snake). */
function snake(key: string): string {
  return key.replace(/[A-Z]/g, (ch) => '_' + ch.toLowerCase());
}

function serverFields(): Record<string, ServerField> {
  const python = serverPython();
  requireFile(python, "the server's Python");
  const out = execFileSync(python, ['-c', DUMP], { encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out) as Record<string, ServerField>;
}

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, Contributed> } };
};

test('every server setting is contributed, with its default and bounds', { timeout: 90_000 }, () => {
  const fields = serverFields();
  const bySnake = new Map(Object.keys(SERVER_SETTINGS).map((key) => [snake(key), key]));
  const missing = Object.keys(fields).filter((name) => !bySnake.has(name));
  assert.deepEqual(missing, [], 'server settings without a copilotServer.* setting (add them to package.json and src/settings.ts)');
  const unknown = [...bySnake.keys()].filter((name) => !(name in fields));
  assert.deepEqual(unknown, [], 'copilotServer.* settings the server does not know');

  for (const [name, field] of Object.entries(fields)) {
    const key = bySnake.get(name)!;
    const schema = manifest.contributes.configuration.properties[`${SECTION}.${key}`];
    assert.ok(schema, `${SECTION}.${key} is not in package.json`);
    const conversion = SERVER_SETTINGS[key];
    assert.deepEqual(toServerValue(conversion, schema.default), field.default, `default of ${SECTION}.${key}`);
    if (field.enum !== undefined) {
      assert.deepEqual(schema.enum, field.enum, `allowed values of ${SECTION}.${key}`);
    }
    assert.equal(schema.maximum, field.maximum, `maximum of ${SECTION}.${key}`);
    assert.equal(schema.exclusiveMinimum, field.exclusiveMinimum, `exclusiveMinimum of ${SECTION}.${key}`);
    // "0 = automatic" settings allow one value below the server's minimum.
    const minimum = conversion === 'zeroIsNull' ? 0 : field.minimum;
    assert.equal(schema.minimum, minimum, `minimum of ${SECTION}.${key}`);
    // What the server takes only from the user, a workspace must not be able to set.
    if (field.userOnly !== undefined) {
      assert.equal(isMachineSetting(key), field.userOnly, `${SECTION}.${key}: user-only on the server, machine here`);
      assert.equal(schema.scope === 'machine', field.userOnly, `scope of ${SECTION}.${key}`);
    }
  }
});
