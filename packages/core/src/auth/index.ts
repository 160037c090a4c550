export * from './permissions.js';
export * from './key-texts.js';
