import { z } from 'zod';
import { agentId, stamp } from './common.js';

/** `minion_start`: an agent id came up. Written by the agent on every start. */
export const agentStartedData = z.looseObject({
  id: agentId,
  cmd: z.literal('_minion_event'),
  pretag: z.null(),
  tag: z.literal('minion_start'),
  data: z.string(),
  /** The agent's grains (`start_event_grains`): kernel, os, host, ipv4, … */
  grains: z.record(z.string(), z.unknown()).optional(),
  version: z.string().optional(),
  _stamp: stamp,
});
export type AgentStartedData = z.infer<typeof agentStartedData>;

export const agentStarted = z.object({ type: z.literal('agent.started'), tag: z.literal('minion_start'), data: agentStartedData });
export type AgentStarted = z.infer<typeof agentStarted>;

/** Salt's text: `Minion <id> started at <asctime>` (asctime as `Wed Nov 25 18:14:15 2026`). */
export function minionStartedText(id: string, at: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  const asctime = `${days[at.getUTCDay()]} ${months[at.getUTCMonth()]} ${String(at.getUTCDate()).padStart(2, ' ')} ${p(at.getUTCHours())}:${p(at.getUTCMinutes())}:${p(at.getUTCSeconds())} ${at.getUTCFullYear()}`;
  return `Minion ${id} started at ${asctime}`;
}
