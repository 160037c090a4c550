// The master's and the agents' keys, credentials and certificates: a subpath of its own
// (`@jobledger/runtime/pki`), so what does not handle keys never loads the X.509 code.
export * from './secret-files.js';
export * from './tls-certs.js';
export * from './master-pki.js';
export * from './key-store.js';
export * from './agent-identity.js';
export * from './claims.js';
export * from './key-events.js';
export * from './key-actions.js';
