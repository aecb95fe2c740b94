// The KvStore conformance suite against a real etcd (Debian's etcd-server, v3 API).
import { createEtcdStore } from '../../legacy/discovery/etcd.js';
import { startEtcd } from '../support/kvservers.js';
import { kvConformance, storeHarness } from './kv-conformance.js';

kvConformance('etcd', async () => {
  const server = await startEtcd();
  process.stderr.write(`# etcd up in ${server.startedInMs()} ms\n`);
  return storeHarness({
    module: new URL('../../legacy/discovery/etcd.js', import.meta.url).href,
    scheme: 'etcd',
    endpoint: server.endpoint,
    factory: createEtcdStore,
    outage: () => server.kill(),
    async recover() {
      await server.restart();
      process.stderr.write(`# etcd back in ${server.startedInMs()} ms\n`);
    },
    stop: () => server.stop(),
  });
});
