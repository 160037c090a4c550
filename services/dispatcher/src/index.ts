export { loadConfig, type DispatcherConfig } from './config.js';
export { startDispatcher, errorReply, DISPATCHER_QUEUE, type Dispatcher, type DispatcherOptions } from './dispatcher.js';
export { JobPublisher, PUBLISH_ID_HEADER, type JobPublisherOptions } from './job-publisher.js';
export { AgentDirectory, type AgentDirectoryOptions, type PresenceSource } from './presence.js';
export { LedgerUnavailableError, NoMinionsError, PublishValidationError } from './errors.js';
export { startRunnerService, RETCODE_REFUSED, type RunnerService, type RunnerServiceOptions } from './runner/service.js';
export { RUNNER_FUNCTIONS, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './runner/functions.js';
export { listJobsSql, type ListJobsQuery } from './runner/list-jobs-sql.js';
export {
  mergeKwargs,
  normaliseTarget,
  parsePublishRequest,
  publishFailure,
  publishReply,
  publishRequest,
  publishSuccess,
  type PublishFailure,
  type PublishJob,
  type PublishReply,
  type PublishRequest,
  type PublishRequestInput,
  type PublishSuccess,
} from './publish-request.js';
