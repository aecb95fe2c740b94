// The KvStore conformance suite against a real ZooKeeper (Debian's zookeeper 3.8, standalone).
import { createZkStore } from '../../legacy/discovery/zk.js';
import { startZookeeper } from '../support/kvservers.js';
import { kvConformance, storeHarness } from './kv-conformance.js';

kvConformance('zk', async () => {
  const server = await startZookeeper();
  process.stderr.write(`# zookeeper up in ${server.startedInMs()} ms\n`);
  return storeHarness({
    module: new URL('../../legacy/discovery/zk.js', import.meta.url).href,
    scheme: 'zk',
    endpoint: server.endpoint,
    factory: createZkStore,
    outage: () => server.kill(),
    async recover() {
      await server.restart();
      process.stderr.write(`# zookeeper back in ${server.startedInMs()} ms\n`);
    },
    stop: () => server.stop(),
  });
});
