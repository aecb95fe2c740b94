// The KvStore conformance suite against a real etcd (Debian's etcd-server, v3 API).
import { createEtcdStore } from '../../legacy/discovery/etcd.js';
import type { KvStore } from '../../legacy/discovery/kv.js';
import { startEtcd } from '../support/kvservers.js';
import { kvConformance } from './kv-conformance.js';

kvConformance('etcd', async () => {
  const server = await startEtcd();
  process.stderr.write(`# etcd up in ${server.startedInMs()} ms\n`);
  const stores: KvStore[] = [];
  const connect = (): KvStore => {
    const s = createEtcdStore([server.endpoint], { timeoutMs: 2000 });
    stores.push(s);
    return s;
  };
  return {
    store: connect(),
    connect,
    child: { module: new URL('../../legacy/discovery/etcd.js', import.meta.url).href, scheme: 'etcd', endpoints: [server.endpoint] },
    outage: () => server.kill(),
    async recover() {
      await server.restart();
      process.stderr.write(`# etcd back in ${server.startedInMs()} ms\n`);
    },
    async close() {
      await Promise.all(stores.map((s) => s.close()));
      await server.stop();
    },
  };
});
