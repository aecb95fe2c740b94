// whitelist: classic 1.2.6+ ("Support node whitelist filter"), undocumented
// on docs.docker.com. `-e whitelist:node==a|b|c` or the
// com.docker.swarm.whitelists label keeps only nodes whose name is exactly one
// of the `|`-separated names. As in classic, the key and the operator are not
// consulted: every whitelist is a list of node names to allow.

import { whitelistsOf } from '../config.js';
import { formatExpression, parseExpressions } from '../expression.js';
import type { Filter } from '../types.js';

export const whitelistFilter: Filter = {
  filter(spec, nodes, enforceSoft) {
    const parsed = parseExpressions(whitelistsOf(spec));
    if (!parsed.ok) return { ok: false, reason: parsed.error };
    let candidates = [...nodes];
    for (const e of parsed.expressions) {
      if (e.soft && !enforceSoft) continue;
      const allowed = new Set(e.value.split('|'));
      candidates = candidates.filter((node) => allowed.has(node.name));
      if (candidates.length === 0) {
        return { ok: false, reason: `unable to find a node that satisfies the whitelist ${formatExpression(e, false)}` };
      }
    }
    return { ok: true, nodes: candidates };
  },
  conditions(spec) {
    const parsed = parseExpressions(whitelistsOf(spec));
    if (!parsed.ok) return parsed;
    return { ok: true, items: parsed.expressions.map((e) => formatExpression(e, true)) };
  },
};
