// The shape constraint and affinity filters share: each expression of the container's
// (hard always, soft when enforced) keeps the nodes whose subjects match it; the first
// expression that leaves no node is the reason.
import type { ContainerSpec, Filter, SchedNode } from '../types.js';
import { expressionMatcher, formatExpression, parseExpressions } from '../expression.js';

export interface ExpressionFilterSpec {
  /** "constraint" | "affinity": names the failing expression in the reason. */
  kind: string;
  /** The container's expressions of this kind. */
  read(spec: ContainerSpec): string[];
  /** What a node offers to be matched against an expression's key. */
  subjectsOf(node: SchedNode, key: string): string[];
  /** Whether the conditions list shows "(soft=…)", as classic did for affinities. */
  showSoft: boolean;
}

export function expressionFilter(f: ExpressionFilterSpec): Filter {
  return {
    filter(spec, nodes, enforceSoft) {
      const parsed = parseExpressions(f.read(spec));
      if (!parsed.ok) return { ok: false, reason: parsed.error };
      let candidates = [...nodes];
      for (const e of parsed.expressions) {
        if (e.soft && !enforceSoft) continue;
        const matches = expressionMatcher(e);
        candidates = candidates.filter((node) => matches(f.subjectsOf(node, e.key)));
        if (candidates.length === 0) {
          return { ok: false, reason: `unable to find a node that satisfies the ${f.kind} ${formatExpression(e, false)}` };
        }
      }
      return { ok: true, nodes: candidates };
    },
    conditions(spec) {
      const parsed = parseExpressions(f.read(spec));
      if (!parsed.ok) return parsed;
      return { ok: true, items: parsed.expressions.map((e) => formatExpression(e, f.showSoft)) };
    },
  };
}
