// Classic Swarm's filter expressions: `<key><operator><value>` as written in
// `-e constraint:...`, `-e affinity:...`, `-e whitelist:...` or the matching
// com.docker.swarm.* labels.
//
// - operator `==` or `!=`; a value starting with `~` makes the rule soft.
// - value: a glob where only `*` is special (other characters keep their
//   regular-expression meaning, as in classic), or `/regexp/`.
// - keys must start with a letter or underscore and be at least two
//   characters long; classic rejected anything else with "Key '...' is invalid".

export type Operator = '==' | '!=';

export interface Expression {
  key: string;
  operator: Operator;
  /** Without the leading `~`. */
  value: string;
  soft: boolean;
}

export type ParsedExpressions = { ok: true; expressions: Expression[] } | { ok: false; error: string };

const KEY_PATTERN = /^[a-z_][a-z0-9\-_.]+$/i;
// Classic's accepted value alphabet: an optional leading `=`, `!` or `/`,
// an optional `~`, then letters, digits and the glob/regexp punctuation.
const VALUE_PATTERN = /^[=!/]?(~)?[a-z0-9:\-_\s.*/()?+[\]\\^$|]+$/i;

/** Parse raw expressions; the first malformed one fails the whole list. */
export function parseExpressions(raw: readonly string[]): ParsedExpressions {
  const expressions: Expression[] = [];
  for (const text of raw) {
    const parsed = parseExpression(text);
    if (!parsed.ok) return parsed;
    expressions.push(parsed.expression);
  }
  return { ok: true, expressions };
}

export function parseExpression(
  text: string,
): { ok: true; expression: Expression } | { ok: false; error: string } {
  // `==` is looked for first, so `a!=b==c` splits at `==`, as classic did.
  const operator: Operator | undefined = text.includes('==') ? '==' : text.includes('!=') ? '!=' : undefined;
  if (operator === undefined) return { ok: false, error: 'One of operator ==, != is expected' };
  const at = text.indexOf(operator);
  const key = text.slice(0, at);
  const rawValue = text.slice(at + operator.length);
  if (!KEY_PATTERN.test(key)) return { ok: false, error: `Key '${key}' is invalid` };
  if (!VALUE_PATTERN.test(rawValue)) return { ok: false, error: `Value '${rawValue}' is invalid` };
  return {
    ok: true,
    expression: { key, operator, value: rawValue.replace(/^~+/, ''), soft: rawValue.startsWith('~') },
  };
}

/** How classic printed an expression in its failure messages. */
export function formatExpression(e: Expression, withSoft: boolean): string {
  const text = `${e.key}${e.operator}${e.value}`;
  return withSoft ? `${text} (soft=${String(e.soft)})` : text;
}

/**
 * Build the test for one expression. It receives every string that describes
 * the subject (a node's name and ID, the names and IDs of a node's
 * containers, ...): `==` holds when any of them matches, `!=` when none does.
 * A pattern that is not a valid regular expression matches nothing, so `!=`
 * with it holds everywhere (classic logged the error and did the same).
 */
export function expressionMatcher(e: Expression): (subjects: readonly string[]) => boolean {
  const pattern = compilePattern(e.value);
  return (subjects) => {
    const matched = pattern !== undefined && subjects.some((s) => pattern.test(s));
    switch (e.operator) {
      case '==':
        return matched;
      case '!=':
        return !matched;
      default: {
        const never: never = e.operator;
        return never;
      }
    }
  };
}

function compilePattern(value: string): RegExp | undefined {
  const isRegexp = value.length >= 2 && value.startsWith('/') && value.endsWith('/');
  if (!isRegexp) return tryRegExp(`^${value.replaceAll('*', '.*')}$`, '');
  // Classic used Go's RE2, where flags are written inline as a leading `(?i)`;
  // JavaScript takes them as RegExp flags instead.
  let body = value.slice(1, -1);
  let flags = '';
  const inline = /^\(\?([ims]+)\)/.exec(body);
  if (inline !== null) {
    flags = [...new Set(inline[1])].join('');
    body = body.slice(inline[0].length);
  }
  return tryRegExp(body, flags);
}

function tryRegExp(source: string, flags: string): RegExp | undefined {
  try {
    return new RegExp(source, flags);
  } catch {
    return undefined;
  }
}
