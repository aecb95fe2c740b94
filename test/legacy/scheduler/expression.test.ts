import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseExpression, parseExpressions } from '../../../legacy/scheduler/index.js';
import { expressionMatcher, formatExpression } from '../../../legacy/scheduler/expression.js';

function matches(text: string, subjects: string[]): boolean {
  const parsed = parseExpression(text);
  assert.ok(parsed.ok, `expected ${text} to parse`);
  return expressionMatcher(parsed.expression)(subjects);
}

void describe('parseExpression', () => {
  void it('reads key, operator and value', () => {
    assert.deepEqual(parseExpression('node==node-1'), {
      ok: true,
      expression: { key: 'node', operator: '==', value: 'node-1', soft: false },
    });
    assert.deepEqual(parseExpression('region!=us-east'), {
      ok: true,
      expression: { key: 'region', operator: '!=', value: 'us-east', soft: false },
    });
  });

  void it('marks ==~ and !=~ as soft and drops the tilde from the value', () => {
    assert.deepEqual(parseExpression('storage==~ssd'), {
      ok: true,
      expression: { key: 'storage', operator: '==', value: 'ssd', soft: true },
    });
    assert.deepEqual(parseExpression('container!=~redis*'), {
      ok: true,
      expression: { key: 'container', operator: '!=', value: 'redis*', soft: true },
    });
  });

  void it('accepts dotted label keys and regexp values', () => {
    const parsed = parseExpression('com.example.type==/front.*/');
    assert.ok(parsed.ok);
    assert.equal(parsed.expression.key, 'com.example.type');
    assert.equal(parsed.expression.value, '/front.*/');
  });

  void it("rejects entries without an operator with classic's message", () => {
    assert.deepEqual(parseExpression('node=node-1'), { ok: false, error: 'One of operator ==, != is expected' });
  });

  void it('rejects keys that do not start with a letter or underscore, or are one character', () => {
    assert.deepEqual(parseExpression('1node==x'), { ok: false, error: "Key '1node' is invalid" });
    assert.deepEqual(parseExpression('a==x'), { ok: false, error: "Key 'a' is invalid" });
  });

  void it('rejects empty values and characters outside the classic alphabet', () => {
    assert.deepEqual(parseExpression('node=='), { ok: false, error: "Value '' is invalid" });
    assert.deepEqual(parseExpression('node==a,b'), { ok: false, error: "Value 'a,b' is invalid" });
  });

  void it('fails a whole list on its first bad entry', () => {
    assert.deepEqual(parseExpressions(['node==a1', 'x']), { ok: false, error: 'One of operator ==, != is expected' });
    const good = parseExpressions(['node==a1', 'zone!=~b*']);
    assert.ok(good.ok);
    assert.equal(good.expressions.length, 2);
  });
});

void describe('expression matching', () => {
  void it('== matches exactly, anchored', () => {
    assert.equal(matches('node==node1', ['node1']), true);
    assert.equal(matches('node==node1', ['node10']), false);
    assert.equal(matches('node==node1', ['xnode1']), false);
  });

  void it('== holds when any subject matches, != when none does', () => {
    assert.equal(matches('node==node1', ['id-1', 'node1']), true);
    assert.equal(matches('node!=node1', ['id-1', 'node1']), false);
    assert.equal(matches('node!=node1', ['id-1', 'node2']), true);
    assert.equal(matches('node!=node1', []), true);
    assert.equal(matches('node==node1', []), false);
  });

  void it('treats * as a glob', () => {
    assert.equal(matches('region==us*', ['us-east']), true);
    assert.equal(matches('region!=us*', ['us-east']), false);
    assert.equal(matches('region!=us*', ['eu-west']), true);
    assert.equal(matches('region==*east', ['us-east']), true);
    assert.equal(matches('region==u*t', ['us-east']), true);
  });

  void it('keeps other characters as regular-expression syntax, as classic did', () => {
    // Classic only rewrote `*`; `?` stays a quantifier and `.` any character.
    assert.equal(matches('node==node-?', ['node']), true);
    assert.equal(matches('node==node-?', ['node-1']), false);
    assert.equal(matches('kernel==3.13', ['3x13']), true);
  });

  void it('matches /regexp/ values unanchored', () => {
    assert.equal(matches('node==/node[12]/', ['node1']), true);
    assert.equal(matches('node==/node[12]/', ['node3']), false);
    assert.equal(matches('node==/node\\d/', ['node7']), true);
    assert.equal(matches('node!=/node-[01]/', ['node-0']), false);
    assert.equal(matches('node!=/node-[01]/', ['node-2']), true);
    assert.equal(matches('node!=/foo\\[bar\\]/', ['foo[bar]']), false);
  });

  void it('honours an RE2-style (?i) prefix', () => {
    assert.equal(matches('node==/(?i)node1/', ['NoDe1']), true);
    assert.equal(matches('node==/node1/', ['NoDe1']), false);
  });

  void it('treats an invalid regexp as matching nothing', () => {
    assert.equal(matches('node==/node[/', ['node[']), false);
    assert.equal(matches('node!=/node[/', ['node[']), true);
  });

  void it('formats expressions the way classic listed them', () => {
    const parsed = parseExpression('container!=~web*');
    assert.ok(parsed.ok);
    assert.equal(formatExpression(parsed.expression, false), 'container!=web*');
    assert.equal(formatExpression(parsed.expression, true), 'container!=web* (soft=true)');
  });
});
