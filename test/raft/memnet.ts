// An in-process network for driver tests: messages are delivered on a later turn of the
// event loop (like a socket would), and nodes can be cut off.

import type { Message, NodeId } from '../../src/raft/core/index.js';
import type { AddressBook, Transport } from '../../src/raft/driver/index.js';

export class MemoryNetwork {
  private readonly nodes = new Map<NodeId, (m: Message) => void>();
  /** Nodes whose traffic, both ways, is dropped. */
  readonly isolated = new Set<NodeId>();

  transport(id: NodeId): Transport {
    return {
      start: (deliver) => {
        this.nodes.set(id, deliver);
        return Promise.resolve();
      },
      send: (messages) => {
        for (const m of messages) {
          if (this.isolated.has(m.from) || this.isolated.has(m.to)) continue;
          setImmediate(() => {
            if (this.isolated.has(m.from) || this.isolated.has(m.to)) return;
            this.nodes.get(m.to)?.(m);
          });
        }
      },
      setAddresses: (_addresses: AddressBook) => undefined,
      stop: () => {
        this.nodes.delete(id);
        return Promise.resolve();
      },
    };
  }
}
