// A one-manager ClusterStore over the in-process network, waited on until it leads: for
// tests of what sits on the store rather than of replication.
import { ClusterStore } from '../../src/store/index.js';
import { MemoryNetwork } from '../raft/memnet.js';

export async function openOneManager(dir: string, opts: { unlockKey?: Uint8Array } = {}): Promise<ClusterStore> {
  const net = new MemoryNetwork();
  const store = await ClusterStore.open({
    id: 'm1',
    dir,
    transport: net.transport('m1'),
    addresses: new Map(),
    bootstrap: { kind: 'found', voters: ['m1'] },
    tuning: { tickMs: 10, electionTicks: 10, heartbeatTicks: 1 },
    ...(opts.unlockKey === undefined ? {} : { unlockKey: opts.unlockKey }),
  });
  for (let i = 0; i < 200 && store.status().leader === null; i++) await new Promise((r) => setTimeout(r, 20));
  return store;
}
