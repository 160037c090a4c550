export { Keyserver, authRequestBody, type AuthAnswer } from './keyserver.js';
export { loadConfig, type KeyserverConfig } from './config.js';
export * from './wheel.js';
