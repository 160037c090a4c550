/**
 * Salt's `ipcidr` matcher (salt/matchers/ipcidr_match.py) with the parts of Python's
 * `ipaddress` it relies on: a target is an address (exact member of the agent's `ipv4` /
 * `ipv6` grain, compared in canonical form) or a network (strict: no host bits set) that one
 * of the agent's addresses falls in.
 */

export interface IpAddress {
  version: 4 | 6;
  /** 32 or 128 bits. */
  value: bigint;
}

export interface IpNetwork {
  version: 4 | 6;
  network: bigint;
  prefix: number;
}

const IPV4_PART = /^(0|[1-9]\d{0,2})$/;

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!IPV4_PART.test(p)) return undefined; // Python refuses leading zeros (ambiguous octal)
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(input: string): bigint | undefined {
  let s = input;
  const pct = s.indexOf('%'); // scope id (Python ≥ 3.9 keeps it; the value is the address)
  if (pct >= 0) {
    if (pct === s.length - 1) return undefined;
    s = s.slice(0, pct);
  }
  if (s.length === 0 || !/^[0-9A-Fa-f:.]+$/.test(s)) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (text: string): string[] => (text === '' ? [] : text.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const all = [...head, ...tail];
  // An embedded IPv4 address counts as two groups and may only come last.
  const hextets: number[] = [];
  const parseGroups = (list: string[], isLastList: boolean): number[] | undefined => {
    const out: number[] = [];
    for (let i = 0; i < list.length; i++) {
      const g = list[i]!;
      if (g.includes('.')) {
        if (!isLastList || i !== list.length - 1) return undefined;
        const v4 = parseV4(g);
        if (v4 === undefined) return undefined;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  if (all.length === 0 && halves.length !== 2) return undefined;
  const h = parseGroups(head, halves.length === 1);
  const t = parseGroups(tail, true);
  if (!h || !t) return undefined;
  if (halves.length === 2) {
    const missing = 8 - h.length - t.length;
    if (missing < 1) return undefined;
    hextets.push(...h, ...new Array<number>(missing).fill(0), ...t);
  } else {
    if (h.length !== 8) return undefined;
    hextets.push(...h);
  }
  let v = 0n;
  for (const x of hextets) v = (v << 16n) | BigInt(x);
  return v;
}

/** Python `ipaddress.ip_address(s)`, or `undefined` where it raises. */
export function parseIpAddress(s: string): IpAddress | undefined {
  const v4 = parseV4(s);
  if (v4 !== undefined) return { version: 4, value: v4 };
  const v6 = parseV6(s);
  if (v6 !== undefined) return { version: 6, value: v6 };
  return undefined;
}

function bits(version: 4 | 6): number {
  return version === 4 ? 32 : 128;
}

function mask(version: 4 | 6, prefix: number): bigint {
  const width = BigInt(bits(version));
  return prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << (width - BigInt(prefix));
}

/** A dotted netmask (`255.255.0.0`) or hostmask (`0.0.255.255`) as a prefix length. */
function v4MaskPrefix(s: string): number | undefined {
  const m = parseV4(s);
  if (m === undefined) return undefined;
  for (let p = 0; p <= 32; p++) {
    if (mask(4, p) === m) return p;
    if ((~mask(4, p) & 0xffffffffn) === m) return p;
  }
  return undefined;
}

/** Python `ipaddress.ip_network(s)` (strict), or `undefined` where it raises. */
export function parseIpNetwork(s: string): IpNetwork | undefined {
  const slash = s.indexOf('/');
  const addrText = slash < 0 ? s : s.slice(0, slash);
  const maskText = slash < 0 ? undefined : s.slice(slash + 1);
  const addr = parseIpAddress(addrText);
  if (!addr || addrText.includes('%')) return undefined;
  let prefix = bits(addr.version);
  if (maskText !== undefined) {
    if (/^\d+$/.test(maskText)) {
      // Python accepts the prefix length in decimal only, no sign, no leading '+'.
      prefix = Number(maskText);
      if (prefix > bits(addr.version)) return undefined;
    } else if (addr.version === 4) {
      const p = v4MaskPrefix(maskText);
      if (p === undefined) return undefined;
      prefix = p;
    } else {
      return undefined;
    }
  }
  const m = mask(addr.version, prefix);
  if ((addr.value & ~m) !== 0n) return undefined; // host bits set
  return { version: addr.version, network: addr.value, prefix };
}

/** Python's `str(ipaddress.ip_address(...))`: dotted quad, or RFC 5952-style IPv6. */
export function formatIpAddress(a: IpAddress): string {
  if (a.version === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((a.value >> shift) & 0xffn)).join('.');
  }
  const hextets = Array.from({ length: 8 }, (_, i) => Number((a.value >> BigInt((7 - i) * 16)) & 0xffffn));
  // Python compresses the longest run (first on ties) of two or more zero hextets.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (hextets[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && hextets[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = hextets.map((h) => h.toString(16));
  if (bestLen < 2) return hex.join(':');
  const left = hex.slice(0, best).join(':');
  const right = hex.slice(best + bestLen).join(':');
  return `${left}::${right}`;
}

function inNetwork(addr: IpAddress, net: IpNetwork): boolean {
  return addr.version === net.version && (addr.value & mask(net.version, net.prefix)) === net.network;
}

function grainList(grains: Readonly<Record<string, unknown>>, proto: string): unknown[] | undefined {
  if (!Object.hasOwn(grains, proto)) return undefined;
  const v = grains[proto];
  return Array.isArray(v) ? v : [v];
}

/**
 * Whether an agent with `grains` is targeted by `-S <tgt>`. An invalid target matches nothing;
 * an agent without the `ipv4`/`ipv6` grain of the target's family does not match.
 */
export function ipcidrMatch(tgt: string, grains: Readonly<Record<string, unknown>>): boolean {
  const addr = parseIpAddress(tgt);
  if (addr) {
    const list = grainList(grains, `ipv${addr.version}`);
    if (!list) return false;
    const canonical = formatIpAddress(addr);
    return list.some((x) => typeof x === 'string' && x === canonical);
  }
  const net = parseIpNetwork(tgt);
  if (!net) return false;
  const list = grainList(grains, `ipv${net.version}`);
  if (!list) return false;
  return list.some((x) => {
    if (typeof x !== 'string') return false;
    const a = parseIpAddress(x);
    return a !== undefined && inNetwork(a, net);
  });
}

/** Whether `tgt` is an address or a network at all (Salt logs "Invalid IP/CIDR target" otherwise). */
export function isIpcidrTarget(tgt: string): boolean {
  return parseIpAddress(tgt) !== undefined || parseIpNetwork(tgt) !== undefined;
}
