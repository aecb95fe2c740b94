// Helpers every benchmark shares: percentiles and the `metric value unit` lines.

export function percentile(sortedMs: number[], p: number): number {
  if (sortedMs.length === 0) return NaN;
  const i = Math.min(sortedMs.length - 1, Math.max(0, Math.ceil((p / 100) * sortedMs.length) - 1));
  return sortedMs[i] ?? NaN;
}

export function metric(name: string, value: number, unit: string): void {
  const v = Number.isFinite(value) ? (Math.abs(value) >= 100 ? value.toFixed(1) : value.toPrecision(4)) : 'NaN';
  process.stdout.write(`${name} ${v} ${unit}\n`);
}

export function progress(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}
