// Salt's publisher_acl through the real CLI, dispatcher and ledger: a user allowed only `test.*`
// on `web*` gets Salt's denial for `cmd.run`, and the refused attempt is itself in the ledger.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliHome } from './support/cli.js';

const home = new CliHome('jobledger-acl-e2e-');
// The CLI's user as Salt names it: root through sudo is `sudo_<name>`; `sudo_acl: True` makes
// the master apply publisher_acl to such users (Salt's default leaves them unrestricted).
const FRED = { SUDO_USER: 'fred' };

beforeAll(async () => {
  fs.writeFileSync(
    path.join(home.root, 'master.yaml'),
    [
      'sudo_acl: True',
      'publisher_acl:',
      '  fred:',
      "    - 'web*':",
      '      - test.*',
      'publisher_acl_blacklist:',
      '  modules:',
      '    - cp.*',
      '',
    ].join('\n'),
  );
  await home.up(['web1', 'db1']);
}, 240_000);

afterAll(async () => {
  await home.downAndRemove();
}, 120_000);

const deniedRows = () =>
  home.query<{ tag: string; data: Record<string, unknown> }>(
    "SELECT tag, data FROM salt_events WHERE tag = 'jobledger/publish/denied' ORDER BY id",
  );

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('publisher_acl', () => {
  it('lets the user run test.* on web*', async () => {
    const r = await home.run(['run', 'web*', 'test.ping'], { env: FRED });
    expect(r).toEqual({ code: 0, stdout: 'web1:\n    True\n', stderr: '' });
  });

  it("refuses cmd.run with Salt's text and exit code 1, runs nothing, and records the attempt", async () => {
    const before = await home.query<{ n: number }>('SELECT count(*)::int AS n FROM jids');
    const r = await home.run(['run', 'web*', 'cmd.run', 'touch /tmp/jobledger-acl-should-not-exist', 'password=hunter2'], { env: FRED });
    expect(r).toEqual({ code: 1, stdout: 'Authorization error occurred.\n', stderr: '' });
    const rows = await waitFor('the denial in salt_events', async () => {
      const got = await deniedRows();
      return got.length > 0 ? got : undefined;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.data).toMatchObject({
      user: 'sudo_fred',
      fun: 'cmd.run',
      tgt: 'web*',
      tgt_type: 'glob',
      error: 'AuthorizationError',
      message: 'Authorization error occurred.',
    });
    // the refused job's arguments are not kept
    expect(JSON.stringify(rows[0]!.data)).not.toContain('hunter2');
    expect(fs.existsSync('/tmp/jobledger-acl-should-not-exist')).toBe(false);
    // no jid was assigned
    expect(await home.query('SELECT count(*)::int AS n FROM jids')).toEqual(before);

    const trail = await home.run(['audit', 'trail', '--user', 'sudo_fred']);
    expect(trail.code, trail.stderr).toBe(0);
    expect(trail.stdout).toContain('DENIED cmd.run on glob "web*": AuthorizationError');
  });

  it('refuses test.* outside web*, since every targeted id must be allowed', async () => {
    const r = await home.run(['run', '*', 'test.ping'], { env: FRED });
    expect(r).toEqual({ code: 1, stdout: 'Authorization error occurred.\n', stderr: '' });
  });

  it("gives a user the ACL does not name Salt's authentication error", async () => {
    const r = await home.run(['run', 'web*', 'test.ping'], { env: { SUDO_USER: 'eve' } });
    expect(r).toEqual({ code: 1, stdout: 'Authentication error occurred.\n', stderr: '' });
  });

  it('applies the blacklist to every user, root included', async () => {
    const r = await home.run(['run', 'web*', 'cp.list_master'], { env: { SUDO_USER: '' } });
    expect(r).toEqual({ code: 1, stdout: 'Authorization error occurred.\n', stderr: '' });
    const rows = await waitFor('the blacklist denial', async () => {
      const got = (await deniedRows()).filter((row) => row.data.fun === 'cp.list_master');
      return got.length > 0 ? got : undefined;
    });
    expect(String(rows[0]!.data.reason)).toMatch(
      /does not have permissions to run cp\.list_master\. Please contact your local administrator/,
    );
  });
});
