import * as assert from 'node:assert/strict';
import { test } from 'node:test';

import { SuggestionModes } from '../src/modes';

test('a snooze ends with a change even when its timer fires before the wall clock says so', async () => {
  // Timers run on a monotonic clock, `now()` on the wall clock: here the wall clock falls
  // 50 ms behind once the snooze starts, so the 30 ms timer fires "early".
  let lag = 0;
  const modes = new SuggestionModes(() => Date.now() - lag);
  const seen: (number | undefined)[] = [];
  modes.onDidChange(() => seen.push(modes.snoozedUntil));
  modes.snooze(0.0005);
  lag = 50;
  const deadline = Date.now() + 2000;
  while (!seen.slice(1).includes(undefined) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  modes.dispose();
  // The first change is the snooze itself; a later one must see it over (the status bar
  // refreshes on changes only).
  assert.ok(seen.slice(1).includes(undefined), `changes saw ${JSON.stringify(seen)}`);
});
