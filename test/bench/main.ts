// `npm run bench -- [suite...]`: runs the named benchmark suites (all when none is named),
// each printing `metric value unit` lines on stdout and its progress on stderr.
import { benchLegacy } from './legacy.js';
import { benchLegacyFailover } from './legacy-failover.js';
import { benchRaft } from './raft.js';

const suites: Record<string, () => Promise<void>> = {
  legacy: async () => {
    await benchLegacy();
    await benchLegacyFailover();
  },
  raft: benchRaft,
};

const asked = process.argv.slice(2);
const unknown = asked.filter((s) => !(s in suites));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown suite(s) ${unknown.join(', ')}; known: ${Object.keys(suites).join(', ')}\n`);
  process.exit(2);
}
for (const name of asked.length > 0 ? asked : Object.keys(suites)) {
  const run = suites[name];
  if (run) await run();
}
