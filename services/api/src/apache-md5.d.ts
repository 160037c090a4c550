declare module 'apache-md5' {
  /** Apache's `$apr1$` MD5 crypt of the password, with the salt taken from `salt` (a hash or `$apr1$<salt>$`). */
  export default function apacheMd5(password: string, salt?: string): string;
}
