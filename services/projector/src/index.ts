export { loadConfig, type ProjectorConfig } from './config.js';
export { startProjector, ensureConsumer, streamReader, type Projector } from './projector.js';
export { applyBatch, readCheckpoint, isDataError, ProjectionStatementError, type ApplyOptions, type ApplyResult } from './apply.js';
export {
  planBatch,
  decodeMessage,
  deadLetterStatements,
  publishLoad,
  mergeProc,
  isFailedReturn,
  safeText,
  type RawMessage,
  type DecodedMessage,
  type DeadLetter,
  type SqlStatement,
  type BatchPlan,
  type ProjectionOptions,
  type ProcRow,
} from './projections.js';
