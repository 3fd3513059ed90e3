// The benches run from .bench/build (tsc's output for src and bench together). Code there finds
// its data files relative to itself, as it does in dist/: the built-in rules (../../rules from
// src/detect), package.json (../../package.json from src/cli) and the dashboard's static files.
// tsc copies none of them, so they are copied here after each bench build.
import { cpSync, rmSync } from 'node:fs';

const out = '.bench/build';
for (const [from, to] of [
  ['rules', `${out}/rules`],
  ['package.json', `${out}/package.json`],
  ['src/hub/dashboard/static', `${out}/src/hub/dashboard/static`],
]) {
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true });
}
