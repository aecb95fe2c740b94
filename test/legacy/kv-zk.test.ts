// The KvStore conformance suite against a real ZooKeeper (Debian's zookeeper 3.8, standalone).
import { createZkStore } from '../../legacy/discovery/zk.js';
import type { KvStore } from '../../legacy/discovery/kv.js';
import { startZookeeper } from '../support/kvservers.js';
import { kvConformance } from './kv-conformance.js';

kvConformance('zk', async () => {
  const server = await startZookeeper();
  process.stderr.write(`# zookeeper up in ${server.startedInMs()} ms\n`);
  const stores: KvStore[] = [];
  const connect = (): KvStore => {
    const s = createZkStore([server.endpoint], { timeoutMs: 2000 });
    stores.push(s);
    return s;
  };
  return {
    store: connect(),
    connect,
    child: { module: new URL('../../legacy/discovery/zk.js', import.meta.url).href, scheme: 'zk', endpoints: [server.endpoint] },
    outage: () => server.kill(),
    async recover() {
      await server.restart();
      process.stderr.write(`# zookeeper back in ${server.startedInMs()} ms\n`);
    },
    async close() {
      await Promise.all(stores.map((s) => s.close()));
      await server.stop();
    },
  };
});
