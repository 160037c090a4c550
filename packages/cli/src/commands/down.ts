import { homeLayout, readState, writeState } from '../home.js';
import { isOurs, readPids, reapRecorded, terminate } from '../supervisor/pids.js';

/** `jobledger down`: stops exactly what `up` started (the pids recorded under the home). */
export async function downCommand(): Promise<number> {
  const home = homeLayout();
  const supervisor = readPids(home.runDir).find((r) => r.name === 'supervisor');
  if (supervisor && isOurs(supervisor.pid, supervisor.marker)) {
    // The supervisor stops its services and servers in order.
    await terminate(supervisor.pid, 60_000);
  }
  // Whatever is left (a supervisor killed with SIGKILL leaves its children running).
  const left = await reapRecorded(home.runDir);
  const state = readState(home);
  if (state?.supervisorPid !== undefined) writeState(home, { ...state, supervisorPid: undefined });
  process.stdout.write(supervisor || left.length > 0 ? 'jobledger is down\n' : 'jobledger was not running\n');
  return 0;
}
