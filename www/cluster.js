// Where the page's cluster comes from: the one place that knows about persistence.
//
// `Cluster.open(dbName, options)` resumes the cluster saved under `dbName` when its
// configuration matches `options` (else starts fresh), `persist()` writes what is durable, and
// `Cluster.reset(dbName)` forgets it. Bindings without `Cluster.open` get a fresh
// `new Cluster(options)` instead, which saves nothing.
import { Cluster } from './pkg/ringstore_web.js';

export const DB_NAME = 'ringstore-page';

export const persistent = typeof Cluster.open === 'function';

export async function openCluster(dbName, options) {
  if (persistent) return await Cluster.open(dbName, options);
  return new Cluster(options);
}

export async function persistCluster(cluster) {
  if (cluster && typeof cluster.persist === 'function') await cluster.persist();
}

export async function resetCluster(dbName) {
  if (typeof Cluster.reset === 'function') await Cluster.reset(dbName);
}

export { Cluster };
