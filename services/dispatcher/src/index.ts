export { loadConfig, type DispatcherConfig } from './config.js';
export { startDispatcher, errorReply, DISPATCHER_QUEUE, type Dispatcher, type DispatcherOptions } from './dispatcher.js';
export { JobPublisher, PUBLISH_ID_HEADER, type JobPublisherOptions } from './job-publisher.js';
export { AgentDirectory, type AgentDirectoryOptions, type PresenceSource } from './presence.js';
export { LedgerUnavailableError, NoMinionsError, PublishValidationError } from './errors.js';
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
