/** Next edit suggestions: reading the server's answer, the preview text, jump vs apply. */

import * as assert from 'node:assert/strict';
import { test } from 'node:test';

import * as vscode from 'vscode';

import { cursorAtEdit, editFor, NextEdits, previewText } from '../src/nextEdit';
import { stub } from './stub/vscode';

const URI = 'file:///tmp/shapes.py';

function answer(version: number, text = 'surface') {
  return {
    edits: [
      {
        range: { start: { line: 4, character: 6 }, end: { line: 4, character: 10 } },
        text,
        textDocument: { uri: URI, version },
        command: { title: 'Accept next edit', command: 'copilot.acceptedNextEdit', arguments: [{ id: 'ne-1' }] },
      },
    ],
  };
}

test('the first edit of an answer for this document version is taken', () => {
  const edit = editFor(answer(7), URI, 7);
  assert.ok(edit !== undefined);
  assert.deepEqual([edit.range.start.line, edit.range.start.character, edit.range.end.character], [4, 6, 10]);
  assert.equal(edit.text, 'surface');
  assert.equal(edit.command?.command, 'copilot.acceptedNextEdit');
});

test('an answer for another version or document, or none, shows nothing', () => {
  assert.equal(editFor(answer(6), URI, 7), undefined);
  assert.equal(editFor(answer(7), 'file:///tmp/other.py', 7), undefined);
  assert.equal(editFor({ edits: [] }, URI, 7), undefined);
  assert.equal(editFor(null, URI, 7), undefined);
});

test('the preview is the new text on one line', () => {
  assert.equal(previewText('surface'), 'surface');
  assert.equal(previewText('a = 1\nb = 2'), 'a = 1 …');
});

test('Tab jumps first, then applies where the edit starts', () => {
  const edit = editFor(answer(7), URI, 7)!;
  assert.equal(cursorAtEdit(new vscode.Position(0, 0), edit), false);
  assert.equal(cursorAtEdit(new vscode.Position(4, 6), edit), true);
});

test('the same edit is offered as a quick fix (a code action provider)', () => {
  stub.reset();
  const edits = new NextEdits(() => undefined);
  assert.ok(stub.otherProviders.includes('registerCodeActionsProvider'));
  edits.dispose();
});
