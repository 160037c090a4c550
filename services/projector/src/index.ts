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
export { lockCheckpoint, readCheckpointChain, type Checkpoint } from './apply.js';
export { cleanOldJobs, applyRemoval, readRemovals, type Removal } from './retention.js';
export { Rebuild, RebuildError, type RebuildOptions, type RebuildProgress } from './rebuild.js';
export { replay, ReplayUsageError, SwapRefusedError, LIVE_SCHEMA, type ReplayOptions, type ReplayResult } from './replay.js';
export {
  auditVerify,
  formatDifference,
  COMPARED_TABLES,
  type VerifyOptions,
  type VerifyReport,
  type RowDifference,
  type ChainCheck,
} from './audit-verify.js';
export { StreamCursor, streamBounds, firstSeqSince } from './stream-cursor.js';
