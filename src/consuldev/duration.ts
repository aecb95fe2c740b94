// Go's time.Duration text form, which is what Consul's HTTP API speaks: `?wait=1m30s`,
// `"TTL": "15s"`, `"LockDelay": "1ms"`, and the quirky error texts that quote them.
// Durations are carried as whole nanoseconds in a bigint so that values such as
// 24h (8.64e13 ns) and Go's own rounding stay exact.

export type DurationParse = { ok: true; ns: bigint } | { ok: false; error: string };

const unitNs: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['µs', 1_000n], // U+00B5 micro sign
  ['μs', 1_000n], // U+03BC Greek mu
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

const maxNs = (1n << 63n) - 1n;

/** time.ParseDuration: "300ms", "-1.5h", "2h45m", "0"; errors read as Go prints them. */
export function parseGoDuration(text: string): DurationParse {
  const invalid: DurationParse = { ok: false, error: `time: invalid duration ${JSON.stringify(text)}` };
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return { ok: true, ns: 0n };
  if (s === '') return invalid;
  let total = 0n;
  while (s !== '') {
    const number = /^(\d*)(?:\.(\d*))?/.exec(s);
    const whole = number?.[1] ?? '';
    const fraction = number?.[2] ?? '';
    const consumed = number?.[0] ?? '';
    if (whole === '' && fraction === '') return invalid;
    s = s.slice(consumed.length);
    const unit = /^[^\d.]*/.exec(s)?.[0] ?? '';
    if (unit === '') return { ok: false, error: `time: missing unit in duration ${JSON.stringify(text)}` };
    const scale = unitNs.get(unit);
    if (scale === undefined) {
      return { ok: false, error: `time: unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(text)}` };
    }
    s = s.slice(unit.length);
    let part = BigInt(whole === '' ? '0' : whole) * scale;
    if (fraction !== '') {
      // Go truncates the fractional part towards zero at nanosecond resolution.
      part += (BigInt(fraction) * scale) / 10n ** BigInt(fraction.length);
    }
    total += part;
    if (total > maxNs) return invalid;
  }
  return { ok: true, ns: negative ? -total : total };
}

function trimmedFraction(value: bigint, digits: number): string {
  if (value === 0n) return '';
  const text = value.toString().padStart(digits, '0').replace(/0+$/, '');
  return '.' + text;
}

/** time.Duration.String: "0s", "1.5ms", "10s", "24h0m0s". */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  if (abs < 1_000n) return `${sign}${abs}ns`;
  if (abs < 1_000_000n) return `${sign}${abs / 1_000n}${trimmedFraction(abs % 1_000n, 3)}µs`;
  if (abs < 1_000_000_000n) return `${sign}${abs / 1_000_000n}${trimmedFraction(abs % 1_000_000n, 6)}ms`;
  const hours = abs / 3_600_000_000_000n;
  const minutes = (abs / 60_000_000_000n) % 60n;
  const seconds = (abs / 1_000_000_000n) % 60n;
  const secondsText = `${seconds}${trimmedFraction(abs % 1_000_000_000n, 9)}s`;
  if (hours > 0n) return `${sign}${hours}h${minutes}m${secondsText}`;
  if (minutes > 0n) return `${sign}${minutes}m${secondsText}`;
  return `${sign}${secondsText}`;
}
