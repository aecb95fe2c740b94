// The replicated state machine the simulation runs on raft: a string KV store with client
// sessions (thesis §6.3) so that a command applied twice — a duplicated forward, a client
// retry — takes effect once.

import type { Model } from './linearizability.js';

export type KvCommand =
  | { readonly op: 'put'; readonly client: number; readonly seq: number; readonly key: string; readonly value: string }
  | { readonly op: 'append'; readonly client: number; readonly seq: number; readonly key: string; readonly value: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(c: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(c));
}

function isCommand(x: unknown): x is KvCommand {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return (r.op === 'put' || r.op === 'append') && typeof r.client === 'number' && typeof r.seq === 'number' && typeof r.key === 'string' && typeof r.value === 'string';
}

export function decodeCommand(data: Uint8Array): KvCommand {
  const parsed: unknown = JSON.parse(decoder.decode(data));
  if (!isCommand(parsed)) throw new Error(`kv: not a command: ${decoder.decode(data)}`);
  return parsed;
}

/** FNV-1a over a string, folded into a running digest of everything applied. */
export function mix(digest: number, s: string): number {
  let h = digest ^ 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

interface KvSnapshot {
  readonly index: number;
  readonly digest: number;
  readonly data: [string, string][];
  readonly sessions: [number, number][];
}

export class KvStore {
  appliedIndex = 0;
  /** Digest of the sequence of applied log entries: equal digests at an index mean equal histories. */
  digest = 0;
  private data = new Map<string, string>();
  private sessions = new Map<number, number>();

  /** Applies a log entry's payload; returns the command if it took effect (not a duplicate). */
  apply(index: number, payload: string, command: KvCommand | null): KvCommand | null {
    if (index !== this.appliedIndex + 1) throw new Error(`kv: applying index ${index} after ${this.appliedIndex}`);
    this.appliedIndex = index;
    this.digest = mix(this.digest, `${index}:${payload}`);
    if (command === null) return null;
    if ((this.sessions.get(command.client) ?? 0) >= command.seq) return null;
    this.sessions.set(command.client, command.seq);
    const old = this.data.get(command.key) ?? '';
    this.data.set(command.key, command.op === 'put' ? command.value : old + command.value);
    return command;
  }

  get(key: string): string {
    return this.data.get(key) ?? '';
  }

  snapshot(): Uint8Array {
    const snap: KvSnapshot = { index: this.appliedIndex, digest: this.digest, data: [...this.data], sessions: [...this.sessions] };
    return encoder.encode(JSON.stringify(snap));
  }

  static restore(bytes: Uint8Array): KvStore {
    const kv = new KvStore();
    if (bytes.length === 0) return kv;
    const snap = JSON.parse(decoder.decode(bytes)) as KvSnapshot;
    kv.appliedIndex = snap.index;
    kv.digest = snap.digest;
    kv.data = new Map(snap.data);
    kv.sessions = new Map(snap.sessions);
    return kv;
  }
}

export type KvInput = { readonly op: 'put' | 'append'; readonly value: string } | { readonly op: 'get' };

/** One key's sequential specification, for the linearizability checker. */
export const registerModel: Model<string, KvInput, string | null> = {
  init: '',
  step(state, input, output) {
    switch (input.op) {
      case 'put':
        return { ok: true, next: input.value };
      case 'append':
        return { ok: true, next: state + input.value };
      case 'get':
        return { ok: output === state, next: state };
      default: {
        const never: never = input;
        return never;
      }
    }
  },
  key: (state) => state,
};
