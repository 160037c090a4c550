export * from './jid.js';
export * from './subject-codec.js';
export * from './subjects.js';
export * from './events/index.js';
export * from './stream.js';
export * from './errors.js';
export * from './targeting.js';
export * from './api/publish.js';
export * as schema from './db/schema.js';
