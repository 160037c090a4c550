import os from 'node:os';
import { homeLayout, readState } from '../home.js';
import type { Io } from './run.js';

/** `jobledger master url`: what an agent on another host is given (`agent --master URL`), and the fingerprint to pin. */
export function masterUrlCommand(io: Io): number {
  const home = homeLayout();
  const state = readState(home);
  if (!state?.natsUrl || state.role === 'agent' || !state.fingerprint) {
    io.stderr(`no master under ${home.root}: start one with \`npx jobledger master --detach\`\n`);
    return 2;
  }
  const url = new URL(state.natsUrl);
  const iface = state.interface ?? '127.0.0.1';
  // Bound to every interface: agents elsewhere reach it by the host's name (in the certificate).
  const host = iface === '0.0.0.0' || iface === '::' ? os.hostname() : url.hostname;
  io.stdout(`${url.protocol}//${host}:${url.port}\n`);
  io.stdout(`master_finger: '${state.fingerprint}'\n`);
  if (state.retPort !== undefined && state.retPort !== Number(url.port) + 1) io.stdout(`master_port: ${state.retPort}\n`);
  return 0;
}
