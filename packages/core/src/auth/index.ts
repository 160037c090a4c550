export * from './permissions.js';
export * from './key-texts.js';
export * from './publisher-acl.js';
export * from './event-signature.js';
export * from './external-auth.js';
