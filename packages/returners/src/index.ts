export { builtinReturners } from './builtins.js';
export {
  isReturnerModule,
  loadReturnerPlugins,
  ReturnerRegistry,
  returnerNotLoadedText,
  UnknownReturnerError,
  type ReturnerGetOptions,
  type ReturnerPlugin,
  type ReturnerRegistryOptions,
} from './registry.js';
export { jidDir, LocalCacheReturner, localCache, packPayload, unpackPayload } from './local-cache.js';
export { multiReturner } from './multi-returner.js';
export { isUnavailable, PGJSONB_SCHEMA, pgjsonb } from './pgjsonb.js';
export { DEFAULT_EVENTS_FILE, rawfileJson } from './rawfile-json.js';
export { DEFAULT_SUBJECT, smtp, smtpBody, smtpSubject } from './smtp.js';
export { DEFAULT_SYSLOG_SOCKET, sendUnixDatagram, syslog, syslogDatagram, syslogSettings } from './syslog.js';
export { saltJsonDumps } from './support.js';
