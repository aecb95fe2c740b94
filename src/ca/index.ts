// The swarm's certificate authority: import from here.
export { CA_COMMON_NAME, CertificateError, certificateDigest, createRootCA, crossSign, generateKey, identityOf, issueNodeCertificate, NODE_CERT_EXPIRY_MS, renewalTime, ROLE_OU, ROOT_CA_EXPIRY_MS, verifyNodeCertificate } from './pki.js';
export type { KeyPair, NodeCertRequest, NodeIdentity, NodeRole, RootCA } from './pki.js';
export { base36, formatJoinToken, joinSecret, parseJoinToken, roleOfSecret, SECRET_BYTES, TokenError } from './token.js';
export type { JoinToken } from './token.js';
export { managerOf, raftCredentials } from './credentials.js';
export type { NodeTls } from './credentials.js';
export { decideIssuance, proofMessage } from './issuance.js';
export type { CertificateRequest, IssuanceDecision, SwarmAuthority } from './issuance.js';
export { addNodeCaService, JoinError, requestJoin, requestRenewal } from './service.js';
export type { IssuedCertificate, NodeCaBackend, RequestOptions } from './service.js';
export { finishRootRotation, issuer, nodesPending, rootsToTrust, startRootRotation, tokenRoot, trustedRoots } from './rotation.js';
export type { CaState } from './rotation.js';
export { joinTokensOf, newClusterCa, rotatedJoinSecrets, storeNodeCaBackend } from './cluster.js';
