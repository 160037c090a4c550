import type { AclRule, EauthBackend } from '@jobledger/core';

/**
 * The `perms` of salt-api's /login reply (salt/netapi `sum_permissions`, `sorted_permissions`):
 * the rules under the user's exact name, those of `'*'` (always), of the groups it is in;
 * strings de-duplicated and sorted, then the other rules sorted by their text; `{}` when there
 * are none. A display hint for clients such as SaltGUI: the dispatcher enforces the real ACL.
 */
export function loginPerms(
  backend: EauthBackend | undefined,
  user: string,
  groups: readonly string[] = [],
): AclRule[] | Record<string, never> {
  if (backend === undefined) return {};
  const all: AclRule[] = [...(backend.users[user] ?? []), ...(backend.users['*'] ?? [])];
  for (const g of groups) all.push(...(backend.users[`${g}%`] ?? []));
  const strings = [...new Set(all.filter((r): r is string => typeof r === 'string'))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const others = all.filter((r) => typeof r !== 'string').sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  const perms = [...strings, ...others];
  return perms.length === 0 ? {} : perms;
}
