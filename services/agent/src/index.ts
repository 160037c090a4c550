export { startAgent, type AgentHandle } from './agent.js';
export { loadConfig, defaultGroupName, agentCachedir, type AgentConfig } from './config.js';
export { execute, type Outcome } from './execute.js';
export { functionNames, lookupFunction } from './modules/index.js';
export { hostGrains } from './grains.js';
export { AGENT_VERSION } from './version.js';
