// The KvStore conformance suite against the Consul-compatible server, through the real
// `consul` client. Outages go through a TCP proxy, so the store keeps its data as a real
// Consul server would (the dev server itself is in memory, like `consul agent -dev`).
import { consulStore } from '../../legacy/discovery/consul.js';
import { startConsulDev } from '../../src/consuldev/index.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { kvConformance, storeHarness } from './kv-conformance.js';

kvConformance('consul', async () => {
  // Sessions as short as the suite's TTLs; a session still lives up to twice its TTL.
  const dev = await startConsulDev({ host: '127.0.0.1', port: 0, minSessionTtlMs: 1000 });
  const proxy = await startTcpProxy(dev.host, dev.port);
  return storeHarness({
    module: new URL('../../legacy/discovery/consul.js', import.meta.url).href,
    scheme: 'consul',
    endpoint: proxy.address,
    factory: consulStore,
    outage: () => proxy.outage(),
    recover: () => proxy.recover(),
    async stop() {
      await proxy.close();
      await dev.close();
    },
  });
});
