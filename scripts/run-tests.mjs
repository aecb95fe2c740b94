#!/usr/bin/env node
// Runs the compiled test files with node's test runner.
//   node scripts/run-tests.mjs            every test (unit, then end-to-end over real engines)
//   node scripts/run-tests.mjs --unit     unit tests only (no engines, no root)
//   node scripts/run-tests.mjs FILTER...  only files whose path contains one of FILTER
// End-to-end files (*.e2e.test.js) run one at a time: each starts its own engines.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (p.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const all = walk('dist/test').filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
const unit = all.filter((f) => !f.endsWith('.e2e.test.js'));
const e2e = unitOnly ? [] : all.filter((f) => f.endsWith('.e2e.test.js'));

if (all.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// One runner invocation, so its closing summary counts every test. Files run one at a
// time when end-to-end files are included: each starts real engines, and two cores are
// what CI has.
const files = [...unit, ...e2e];
const concurrency = e2e.length > 0 ? 1 : 2;
const r = spawnSync(process.execPath, ['--enable-source-maps', '--test', `--test-concurrency=${concurrency}`, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
