import os from 'node:os';
import { natsServerList } from '@jobledger/runtime';
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
  // A cluster: every node, comma-separated (what `agent --master` takes).
  const urls = natsServerList(state.natsUrl).map((u) => new URL(u));
  const iface = state.interface ?? '127.0.0.1';
  // Bound to every interface: agents elsewhere reach it by the host's name (in the certificate).
  const host = (url: URL) => (iface === '0.0.0.0' || iface === '::' ? os.hostname() : url.hostname);
  io.stdout(urls.map((url) => `${url.protocol}//${host(url)}:${url.port}`).join(',') + '\n');
  io.stdout(`master_finger: '${state.fingerprint}'\n`);
  if (state.retPort !== undefined && state.retPort !== Number(urls[0]!.port) + 1) io.stdout(`master_port: ${state.retPort}\n`);
  return 0;
}
