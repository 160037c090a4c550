import crypto from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import apacheMd5 from 'apache-md5';

/**
 * Salt's `file` eauth backend (salt/auth/file.py): users and passwords in a file named by
 * `^filename`, as `^filetype: text` (`user:password` lines, the password as `^hashtype` says:
 * plaintext, or a hex digest such as sha256) or `^filetype: htpasswd` (Apache's format: bcrypt
 * `$2y$`, `$apr1$` MD5 or `{SHA}`; what `htpasswd -B` writes). The file is read at every login,
 * so users can be added without a restart.
 */
export interface FileEauthOptions {
  filename: string;
  filetype: 'text' | 'htpasswd';
  hashtype: string;
  fieldSeparator: string;
  usernameField: number;
  passwordField: number;
}

export class EauthConfigError extends Error {
  override readonly name = 'EauthConfigError';
  readonly retryable = false;
}

/** The backend's options from the `^key` entries of `external_auth: file:`. */
export function fileEauthOptions(options: Readonly<Record<string, unknown>>, configDir: string): FileEauthOptions {
  const filename = options.filename;
  if (typeof filename !== 'string' || filename === '') throw new EauthConfigError('external_auth file: ^filename is not set');
  const filetype = options.filetype ?? 'text';
  if (filetype !== 'text' && filetype !== 'htpasswd') {
    throw new EauthConfigError(`external_auth file: ^filetype ${JSON.stringify(filetype)} is not supported (text or htpasswd)`);
  }
  const hashtype =
    options.hashtype === undefined ? 'plaintext' : typeof options.hashtype === 'string' ? options.hashtype.toLowerCase() : '';
  if (hashtype !== 'plaintext' && !crypto.getHashes().includes(hashtype)) {
    throw new EauthConfigError(`external_auth file: ^hashtype ${JSON.stringify(options.hashtype)} is not a known hash`);
  }
  const field = (v: unknown, fallback: number, name: string) => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < 1) throw new EauthConfigError(`external_auth file: ^${name} must be a field number from 1`);
    return n;
  };
  return {
    filename: path.resolve(configDir, filename),
    filetype,
    hashtype,
    fieldSeparator: typeof options.field_separator === 'string' && options.field_separator !== '' ? options.field_separator : ':',
    usernameField: field(options.username_field, 1, 'username_field'),
    passwordField: field(options.password_field, 2, 'password_field'),
  };
}

const sameText = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
};

/** Does an htpasswd hash match the password? */
export function htpasswdMatches(hash: string, password: string): boolean {
  if (/^\$2[abxy]\$/.test(hash)) return bcrypt.compareSync(password, hash.replace(/^\$2y\$/, '$2b$'));
  if (hash.startsWith('$apr1$')) return sameText(apacheMd5(password, hash), hash);
  if (hash.startsWith('{SHA}')) return sameText(`{SHA}${crypto.createHash('sha1').update(password).digest('base64')}`, hash);
  return false; // crypt(3) DES and plain text are refused: only hashes worth the name
}

/** Checks a login against the file; false for an unknown user or a wrong password. */
export async function fileEauthCheck(opts: FileEauthOptions, username: string, password: string): Promise<boolean> {
  const text = await readFile(opts.filename, 'utf8');
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    if (opts.filetype === 'htpasswd') {
      const at = line.indexOf(':');
      if (at < 0 || line.slice(0, at) !== username) continue;
      return htpasswdMatches(line.slice(at + 1).trim(), password);
    }
    const fields = line.split(opts.fieldSeparator);
    if (fields[opts.usernameField - 1] !== username) continue;
    const stored = (fields[opts.passwordField - 1] ?? '').trim();
    if (opts.hashtype === 'plaintext') return sameText(password, stored);
    return sameText(crypto.createHash(opts.hashtype).update(password).digest('hex'), stored.toLowerCase());
  }
  return false;
}
