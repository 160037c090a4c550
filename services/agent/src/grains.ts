import { readFileSync } from 'node:fs';
import os from 'node:os';
import { AGENT_VERSION } from './version.js';
import type { Grains } from './modules/types.js';

/** os-release `ID` → Salt's `os` grain. */
const OS_NAMES: Record<string, string> = {
  ubuntu: 'Ubuntu',
  debian: 'Debian',
  raspbian: 'Raspbian',
  linuxmint: 'Mint',
  centos: 'CentOS',
  rhel: 'RedHat',
  fedora: 'Fedora',
  rocky: 'Rocky',
  almalinux: 'AlmaLinux',
  ol: 'OEL',
  amzn: 'Amazon',
  alpine: 'Alpine',
  arch: 'Arch',
  gentoo: 'Gentoo',
  opensuse: 'SUSE',
  'opensuse-leap': 'Leap',
  'opensuse-tumbleweed': 'openSUSE Tumbleweed',
  sles: 'SUSE',
};

/** Salt's `os` → `os_family`. */
const OS_FAMILIES: Record<string, string> = {
  Ubuntu: 'Debian',
  Debian: 'Debian',
  Raspbian: 'Debian',
  Mint: 'Debian',
  CentOS: 'RedHat',
  RedHat: 'RedHat',
  Fedora: 'RedHat',
  Rocky: 'RedHat',
  AlmaLinux: 'RedHat',
  OEL: 'RedHat',
  Amazon: 'RedHat',
  SUSE: 'Suse',
  Leap: 'Suse',
  'openSUSE Tumbleweed': 'Suse',
  Alpine: 'Alpine',
  Arch: 'Arch',
  Gentoo: 'Gentoo',
};

function readOsRelease(): Record<string, string> {
  for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      const out: Record<string, string> = {};
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
        if (m) out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
      }
      return out;
    } catch {
      /* next */
    }
  }
  return {};
}

function readTrimmed(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function addresses(family: 'IPv4' | 'IPv6'): string[] {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === family) out.add(a.address.replace(/%.*$/, ''));
  }
  return [...out].sort();
}

/**
 * The grains every id of this process shares (Salt's core grains, a useful subset), computed
 * once at start; an id's grains are these plus its `id`.
 */
export function hostGrains(): Grains {
  const rel = readOsRelease();
  const osName = OS_NAMES[rel.ID ?? ''] ?? (rel.NAME?.split(' ')[0] || os.type());
  const osFamily = OS_FAMILIES[osName] ?? osName;
  const osrelease = rel.VERSION_ID ?? os.release();
  const nodename = os.hostname();
  const [host = nodename, ...domainParts] = nodename.split('.');
  const cpus = os.cpus();
  const user = os.userInfo();
  const grains: Grains = {
    host,
    nodename,
    localhost: nodename,
    fqdn: nodename,
    domain: domainParts.join('.'),
    kernel: os.type(),
    kernelrelease: os.release(),
    kernelversion: os.version(),
    os: osName,
    os_family: osFamily,
    osfamily: osFamily,
    osfullname: rel.NAME ?? osName,
    osrelease,
    oscodename: rel.VERSION_CODENAME ?? '',
    osfinger: `${rel.NAME ?? osName}-${osrelease.split('.')[0]}`,
    cpuarch: os.machine(),
    cpu_model: cpus[0]?.model ?? '',
    num_cpus: cpus.length,
    mem_total: Math.floor(os.totalmem() / (1024 * 1024)),
    ipv4: addresses('IPv4'),
    ipv6: addresses('IPv6'),
    shell: '/bin/sh',
    path: process.env.PATH ?? '',
    username: user.username,
    uid: user.uid,
    gid: user.gid,
    pid: process.pid,
    nodejs_version: process.versions.node,
    jobledger_version: AGENT_VERSION,
  };
  const machineId = readTrimmed('/etc/machine-id');
  if (machineId !== undefined) grains.machine_id = machineId;
  return grains;
}

/** Salt's `traverse_dict_and_list`: `a:b:0` walks mappings by key and lists by index. */
export function traverse(data: unknown, key: string, fallback: unknown, delimiter = ':'): unknown {
  let ptr = data;
  for (const part of key.split(delimiter)) {
    if (Array.isArray(ptr)) {
      const embedded = ptr.find((x): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x) && part in x);
      if (embedded !== undefined) ptr = embedded[part];
      else if (/^-?\d+$/.test(part)) {
        const i = Number(part);
        const v: unknown = ptr.at(i);
        if (v === undefined && (i >= ptr.length || i < -ptr.length)) return fallback;
        ptr = v;
      } else return fallback;
    } else if (typeof ptr === 'object' && ptr !== null && Object.hasOwn(ptr, part)) {
      ptr = (ptr as Record<string, unknown>)[part];
    } else {
      return fallback;
    }
  }
  return ptr;
}
