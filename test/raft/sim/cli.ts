// npm run test:sim -- --seeds N --from S [--trace]
// Runs the deterministic simulation over seeds S..S+N-1; exits 1 on any violation and
// prints, for each failing seed, the command that replays it with a trace.

import { runSeed } from './sim.js';

function intFlag(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) {
    console.error(`${name} needs a non-negative integer, got "${args[i + 1] ?? ''}"`);
    process.exit(2);
  }
  return v;
}

const args = process.argv.slice(2);
const seeds = intFlag(args, '--seeds', 100);
const from = intFlag(args, '--from', 1);
const trace = args.includes('--trace');

const started = process.hrtime.bigint();
let failed = 0;
let events = 0;
for (let seed = from; seed < from + seeds; seed++) {
  const r = runSeed(seed, { trace });
  events += r.stats.events;
  if (trace) {
    console.log(`seed ${seed}: ${r.scenario}`);
    for (const line of r.trace) console.log(line);
    console.log(JSON.stringify(r.stats));
  }
  if (r.violations.length > 0) {
    failed++;
    console.error(`seed ${seed} FAILED (${r.scenario})`);
    for (const v of r.violations) console.error(`  ${v}`);
    console.error(`  replay: npm run test:sim -- --seeds 1 --from ${seed} --trace`);
  }
}
const secs = Number(process.hrtime.bigint() - started) / 1e9;
console.log(`${seeds} seeds from ${from}: ${failed} failed; ${secs.toFixed(1)} s, ${(seeds / secs).toFixed(1)} seeds/s, ${events} events`);
process.exit(failed > 0 ? 1 : 0);
