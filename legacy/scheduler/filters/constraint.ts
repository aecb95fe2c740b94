// constraint: nodes whose name/ID (key `node`) or label matches each
// expression. A node without the label is matched as if its value were "",
// so `region!=us*` accepts nodes with no region at all.

import { constraintsOf } from '../config.js';
import { expressionMatcher, formatExpression, parseExpressions } from '../expression.js';
import type { Filter, SchedNode } from '../types.js';

export const constraintFilter: Filter = {
  filter(spec, nodes, enforceSoft) {
    const parsed = parseExpressions(constraintsOf(spec));
    if (!parsed.ok) return { ok: false, reason: parsed.error };
    let candidates = [...nodes];
    for (const e of parsed.expressions) {
      if (e.soft && !enforceSoft) continue;
      const matches = expressionMatcher(e);
      candidates = candidates.filter((node) => matches(subjectsOf(node, e.key)));
      if (candidates.length === 0) {
        return { ok: false, reason: `unable to find a node that satisfies the constraint ${formatExpression(e, false)}` };
      }
    }
    return { ok: true, nodes: candidates };
  },
  conditions(spec) {
    const parsed = parseExpressions(constraintsOf(spec));
    if (!parsed.ok) return parsed;
    return { ok: true, items: parsed.expressions.map((e) => formatExpression(e, false)) };
  },
};

function subjectsOf(node: SchedNode, key: string): string[] {
  if (key === 'node') return [node.id, node.name];
  return [node.labels[key] ?? ''];
}
