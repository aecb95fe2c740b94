// One structured logger for every part: logrus-style lines (as classic Swarm printed
// them) on stderr; quiet by default (info and up), --debug for detail.

export type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

let threshold: Level = 'info';
let sink: (line: string) => void = (line) => process.stderr.write(line + '\n');

export function setLogLevel(level: Level): void {
  threshold = level;
}

/** Whether debug lines are printed: lets hot paths skip building them. */
export function debugging(): boolean {
  return threshold === 'debug';
}

export function setLogSink(fn: (line: string) => void): void {
  sink = fn;
}

export type Fields = Record<string, string | number | boolean | undefined>;

function quote(v: string): string {
  return /^[\w./:@-]+$/.test(v) ? v : JSON.stringify(v);
}

function emit(level: Level, msg: string, fields: Fields): void {
  if (order[level] < order[threshold]) return;
  let line = `time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)}`;
  for (const [k, v] of Object.entries(fields)) {
    if (v !== undefined) line += ` ${k}=${quote(String(v))}`;
  }
  sink(line);
}

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  with(fields: Fields): Logger;
}

export function logger(base: Fields = {}): Logger {
  return {
    debug: (m, f = {}) => emit('debug', m, { ...base, ...f }),
    info: (m, f = {}) => emit('info', m, { ...base, ...f }),
    warn: (m, f = {}) => emit('warn', m, { ...base, ...f }),
    error: (m, f = {}) => emit('error', m, { ...base, ...f }),
    with: (f) => logger({ ...base, ...f }),
  };
}

export const log = logger();
