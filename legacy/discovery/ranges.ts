// Address ranges as classic Swarm wrote them: "10.0.0.[10:20]:2375" is eleven addresses.
// Pure: text in, addresses out.

const rangePattern = /\[(\d+):(\d+)\]/;
const maxExpansion = 65536;

/** Expands every `[a:b]` range in an entry; an entry without ranges is itself. */
export function expandRanges(entry: string): string[] {
  const m = rangePattern.exec(entry);
  if (!m || m.index === undefined) return [entry];
  const from = Number(m[1]);
  const to = Number(m[2]);
  if (from > to) throw new Error(`invalid range '${m[0]}' in '${entry}': start is after end`);
  if (to - from + 1 > maxExpansion) throw new Error(`range '${m[0]}' in '${entry}' is too large`);
  const out: string[] = [];
  for (let i = from; i <= to; i++) {
    out.push(...expandRanges(entry.slice(0, m.index) + String(i) + entry.slice(m.index + m[0].length)));
  }
  return out;
}

/** Checks an engine address is host:port, with a port in range. */
export function validateAddress(addr: string): string {
  const i = addr.lastIndexOf(':');
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`invalid engine address '${addr}': expected host:port, for example 10.0.0.5:2375`);
  }
  return addr;
}

/** Parses a list of entries separated by commas, newlines or spaces, skipping blank lines and # comments. */
export function parseEntries(text: string): string[] {
  const out: string[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    for (const part of line.split(/[,\s]+/)) {
      if (part === '') continue;
      for (const addr of expandRanges(part)) out.push(validateAddress(addr));
    }
  }
  return [...new Set(out)];
}
