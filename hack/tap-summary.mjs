// Reads tap's raw TAP output on stdin and prints the closing line CI reads:
// "N passed, N failed" (", N skipped" when any). Counts come from tap's own
// final tally comment; a run without one (a crash) counts as one failure.
import { readFileSync } from 'node:fs';

const text = readFileSync(0, 'utf8');
const tallies = [...text.matchAll(/^# \{ (total: \d+[^}]*)\}$/gm)];
const last = tallies.at(-1)?.[1];
const num = (name) => Number(new RegExp(`\\b${name}: (\\d+)`).exec(last ?? '')?.[1] ?? 0);
let passed = num('pass');
let failed = num('fail');
const skipped = num('skip') + num('todo');
if (!last) failed = Math.max(failed, 1);
// A failed test file (e.g. a crash outside any assertion) without a failed assertion still fails.
const notOkFiles = (text.match(/^not ok \d+ - /gm) ?? []).length;
if (notOkFiles > 0 && failed === 0) failed = notOkFiles;
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
