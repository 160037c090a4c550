import fs from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';

/**
 * A master.yaml with salt-api's `rest_cherrypy:` on `port` (plain HTTP) and the `file` eauth
 * over an htpasswd file of bcrypt hashes (`$2y$`, as `htpasswd -B` writes): each user with its
 * password and its external_auth rules.
 */
export function writeApiMaster(root: string, port: number, users: Record<string, { password: string; rules: string[] }>): void {
  const hash = (pw: string) => bcrypt.hashSync(pw, 4).replace(/^\$2b\$/, '$2y$');
  const file = 'api-users.htpasswd';
  fs.writeFileSync(
    path.join(root, file),
    Object.entries(users)
      .map(([u, { password }]) => `${u}:${hash(password)}\n`)
      .join(''),
  );
  const lines = [
    'rest_cherrypy:',
    `  port: ${port}`,
    '  disable_ssl: True',
    'external_auth:',
    '  file:',
    `    ^filename: ${file}`,
    '    ^filetype: htpasswd',
  ];
  for (const [u, { rules }] of Object.entries(users)) lines.push(`    ${u}:`, ...rules.map((r) => `      - '${r}'`));
  fs.writeFileSync(path.join(root, 'master.yaml'), lines.join('\n') + '\n');
}
