// `--format` for swarm's list output, as Docker's list commands take it: a Go-template
// subset with the fields of one entry ({{.Addr}}, {{.IP}}, {{.Port}}) and {{json .}}.

export interface EngineEntry {
  Addr: string;
  IP: string;
  Port: string;
}

export function entryOf(addr: string): EngineEntry {
  const i = addr.lastIndexOf(':');
  return { Addr: addr, IP: addr.slice(0, i).replace(/^\[|\]$/g, ''), Port: addr.slice(i + 1) };
}

/** Renders one entry; an unknown field is an error naming the fields there are. */
export function renderEntry(format: string, entry: EngineEntry): string {
  return format.replace(/\{\{\s*(json\s+\.|\.[A-Za-z]*)\s*\}\}/g, (_, field: string) => {
    if (field.startsWith('json')) return JSON.stringify(entry);
    if (field === '.') return entry.Addr;
    const name = field.slice(1);
    if (name === 'Addr' || name === 'IP' || name === 'Port') return entry[name];
    throw new Error(`--format: template: can't evaluate field ${name}; fields are .Addr, .IP, .Port (or {{json .}})`);
  }).replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}
