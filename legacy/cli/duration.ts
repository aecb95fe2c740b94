// Go-style durations, as classic Swarm's flags took them: "500ms", "30s", "1m30s", "2h".
const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds for a duration; a bare number is seconds (classic accepted `--heartbeat 20`). */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t)) !== null) {
    total += Number(m[1]) * (units[m[2] ?? 's'] ?? 1000);
    matched = re.lastIndex;
  }
  if (t === '' || matched !== t.length) throw new Error(`invalid duration '${text}' for ${flag}: use a number with a unit, for example 30s, 500ms or 1m`);
  return total;
}
