// constraint: nodes whose name/ID (key `node`) or label matches each
// expression. A node without the label is matched as if its value were "",
// so `region!=us*` accepts nodes with no region at all.

import { constraintsOf } from '../config.js';
import { expressionFilter } from './expressions.js';
import type { Filter, SchedNode } from '../types.js';

export const constraintFilter: Filter = expressionFilter({ kind: 'constraint', read: constraintsOf, subjectsOf, showSoft: false });

function subjectsOf(node: SchedNode, key: string): string[] {
  if (key === 'node') return [node.id, node.name];
  return [node.labels[key] ?? ''];
}
