// Unit-test support: job control for an id that runs no other job.
import type { JobControl } from '../modules/index.js';

export const noJobs: JobControl = {
  running: async () => [],
  find: async () => undefined,
  signal: async () => ({ kind: 'unknown' }),
};
