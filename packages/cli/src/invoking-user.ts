import os from 'node:os';

/** The invoking account as Salt names it: `sudo_<name>` when root through sudo. */
export function invokingUser(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SUDO_USER) return `sudo_${env.SUDO_USER}`;
  try {
    return os.userInfo().username;
  } catch {
    return 'root';
  }
}
