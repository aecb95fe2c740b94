// A string KV state machine for the driver's tests, the raftkv test server and the bench:
// commands are JSON puts; the snapshot is the whole map.

import { jsonArrayInSlices } from '../../src/raft/driver/index.js';
import type { StateMachine } from '../../src/raft/driver/index.js';

export interface KvPut {
  readonly key: string;
  readonly value: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodePut(put: KvPut): Uint8Array {
  return encoder.encode(JSON.stringify([put.key, put.value]));
}

export class KvMachine implements StateMachine<null> {
  readonly data = new Map<string, string>();
  appliedIndex = 0;

  apply(index: number, command: Uint8Array): null {
    const parsed: unknown = JSON.parse(decoder.decode(command));
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'string' || typeof parsed[1] !== 'string') throw new Error('kv: malformed put');
    this.data.set(parsed[0], parsed[1]);
    this.appliedIndex = index;
    return null;
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify({ index: this.appliedIndex, data: [...this.data] }));
  }

  /** Strings are immutable: the pairs taken now are the state now, serialised in slices. */
  async snapshotLater(): Promise<Uint8Array> {
    const index = this.appliedIndex;
    const pairs: [string, string][] = [];
    for (const pair of this.data) pairs.push(pair);
    return Buffer.concat([Buffer.from(`{"index":${index},"data":`), await jsonArrayInSlices(pairs), Buffer.from('}')]);
  }

  restore(state: Uint8Array): void {
    this.data.clear();
    if (state.length === 0) return;
    const parsed = JSON.parse(decoder.decode(state)) as { index: number; data: [string, string][] };
    this.appliedIndex = parsed.index;
    for (const [k, v] of parsed.data) this.data.set(k, v);
  }

  /** Order-independent fingerprint of the contents, to compare replicas. */
  digest(): string {
    return JSON.stringify([...this.data].sort(([a], [b]) => a.localeCompare(b)));
  }
}
