// JSON out, as Consul's Go encoder writes it. A tiny serializer of our own because KV
// Flags are uint64 (up to 2^64-1): they are carried as bigint and must print as exact
// integer literals, which JSON.stringify refuses to do.

export type Json = null | boolean | number | bigint | string | readonly Json[] | { readonly [key: string]: Json };

function encode(value: Json, indent: string, depth: number): string {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return JSON.stringify(value);
  const pad = indent === '' ? '' : '\n' + indent.repeat(depth + 1);
  const close = indent === '' ? '' : '\n' + indent.repeat(depth);
  const colon = indent === '' ? ':' : ': ';
  if (isJsonArray(value)) {
    if (value.length === 0) return '[]';
    return '[' + value.map((v) => pad + encode(v, indent, depth + 1)).join(',') + close + ']';
  }
  const keys = Object.keys(value);
  if (keys.length === 0) return '{}';
  return '{' + keys.map((k) => pad + JSON.stringify(k) + colon + encode(value[k] ?? null, indent, depth + 1)).join(',') + close + '}';
}

function isJsonArray(value: readonly Json[] | { readonly [key: string]: Json }): value is readonly Json[] {
  return Array.isArray(value);
}

/** Compact by default; `pretty` indents by four spaces and ends with a newline, as `?pretty` does. */
export function toJson(value: Json, pretty = false): string {
  return pretty ? encode(value, '    ', 0) + '\n' : encode(value, '', 0);
}
