// Root CA rotation (`docker swarm ca --rotate`), as swarm mode does it, without a moment
// when two nodes cannot talk:
//
//   1. A new root is made, and its key is certified by the old root (cross-signed).
//   2. Nodes trust both roots; new node certificates are issued by the new root and served
//      with the cross-signed certificate, so a node that trusts only the old root still
//      verifies them (node -> cross-signed -> old root).
//   3. When every node holds a certificate of the new root, the old root is dropped.
//
// Pure but for the new root's key (createRootCA); times come in as arguments.
import { createPublicKey, X509Certificate } from 'node:crypto';
import { createRootCA, crossSign, signedBy, type RootCA } from './pki.js';

export type CaState =
  | { readonly phase: 'steady'; readonly root: RootCA }
  | { readonly phase: 'rotating'; readonly old: RootCA; readonly next: RootCA; readonly crossSignedPem: string };

export function startRootRotation(state: CaState, now: Date, next: RootCA = createRootCA({ now })): CaState {
  // Rotating again mid-rotation starts over from the root every node still trusts.
  const old = state.phase === 'steady' ? state.root : state.old;
  return { phase: 'rotating', old, next, crossSignedPem: crossSign(old, next.certPem) };
}

/** What signs node certificates now, and the certificates to serve after them. */
export function issuer(state: CaState): { readonly ca: RootCA; readonly chainPems: readonly string[] } {
  return state.phase === 'steady' ? { ca: state.root, chainPems: [] } : { ca: state.next, chainPems: [state.crossSignedPem] };
}

/** The roots a node must trust now. */
export function trustedRoots(state: CaState): readonly string[] {
  return state.phase === 'steady' ? [state.root.certPem] : [state.old.certPem, state.next.certPem];
}

/** The root whose digest join tokens carry: the old one until the rotation is done. */
export function tokenRoot(state: CaState): RootCA {
  return state.phase === 'steady' ? state.root : state.old;
}

/** Nodes whose certificate the new root did not issue yet (what `docker swarm ca --rotate` waits on). */
export function nodesPending(state: CaState, nodes: Iterable<{ readonly nodeId: string; readonly certPem: string }>): string[] {
  if (state.phase === 'steady') return [];
  const nextKey = createPublicKey(state.next.certPem);
  const pending: string[] = [];
  const issuedByNext = (certPem: string): boolean => {
    try {
      return new X509Certificate(certPem).verify(nextKey);
    } catch {
      return false;
    }
  };
  for (const n of nodes) if (!issuedByNext(n.certPem)) pending.push(n.nodeId);
  return pending;
}

/** Ends a rotation once no node is pending: the new root alone. */
export function finishRootRotation(state: CaState, pending: readonly string[]): CaState {
  if (state.phase === 'steady') return state;
  if (pending.length > 0) throw new Error(`the root rotation cannot finish: ${pending.length} node(s) still hold certificates of the old root (${pending.slice(0, 5).join(', ')}${pending.length > 5 ? ', …' : ''}); they renew at their next connection, or remove the ones that are gone`);
  return { phase: 'steady', root: state.next };
}

/**
 * The roots a node trusts after an answer: those it trusted that the swarm still names,
 * and a new root only when a root it trusts vouches for that root's key (the cross-signed
 * certificate of a rotation). A manager cannot make a node trust a root out of thin air.
 */
export function rootsToTrust(trusted: readonly string[], offered: readonly unknown[], chainPems: readonly string[]): string[] {
  const keyOf = (pem: string): string => createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('base64');
  const trustedKeys = new Set(trusted.map(keyOf));
  const vouched = new Set<string>();
  for (const c of chainPems) {
    const cert = new X509Certificate(c);
    if (cert.ca && trusted.some((t) => signedBy(cert, new X509Certificate(t)))) vouched.add(keyOf(c));
  }
  const accepted = offered.filter((p): p is string => typeof p === 'string').filter((p) => {
    const k = keyOf(p);
    return trustedKeys.has(k) || vouched.has(k);
  });
  // An answer that names none of them changes nothing: keep what was trusted.
  return accepted.length > 0 ? accepted : [...trusted];
}
