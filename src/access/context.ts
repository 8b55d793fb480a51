import { BlockList, isIPv6 } from 'node:net';
import type { Principal } from '../auth/principal.ts';
import type { LabelCode } from './security-labels.ts';
import { confidentialitySystem, sensitivitySystem } from './security-labels.ts';

/**
 * Context rule: when and from where. Time windows per role (outside them a request is refused, or
 * permitted and flagged for the audit), and network rules: a role may be limited to listed
 * networks, and data with a given label (say V) is seen only from listed networks.
 */
export interface AccessContextConfig {
  hours?: Record<string, { from: string; to: string; days?: number[]; timeZone?: string; action?: 'deny' | 'flag' }>;
  networks?: { roles?: string[]; labels?: string[]; cidrs: string[] }[];
}

export interface ContextOutcome {
  permit: boolean;
  reasons: string[];
  /** Flags for the audit (e.g. off-hours). */
  flags: string[];
  /** Labels hidden because the request comes from outside the networks allowed for them. */
  hiddenLabels: LabelCode[];
}

interface CompiledNetworkRule {
  roles?: string[];
  labels?: string[];
  allowed: BlockList;
  cidrs: string[];
}

let hours: AccessContextConfig['hours'] = {};
let networks: CompiledNetworkRule[] = [];

/** Validates and installs a deployment's context rules (throws on a malformed one). */
export function configureAccessContext(config: AccessContextConfig): void {
  for (const [role, h] of Object.entries(config.hours ?? {})) {
    if (!/^\d{2}:\d{2}$/.test(h.from) || !/^\d{2}:\d{2}$/.test(h.to)) throw new Error(`accessContext.hours.${role}: from and to are HH:MM`);
    if (h.action !== undefined && h.action !== 'deny' && h.action !== 'flag') throw new Error(`accessContext.hours.${role}.action is deny or flag`);
    if (h.timeZone) new Intl.DateTimeFormat('en-GB', { timeZone: h.timeZone });
  }
  networks = (config.networks ?? []).map((rule, i) => {
    const allowed = new BlockList();
    for (const cidr of rule.cidrs ?? []) {
      const [ip, bits] = cidr.split('/');
      const type = isIPv6(ip) ? 'ipv6' : 'ipv4';
      const prefix = bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits);
      try {
        allowed.addSubnet(ip, prefix, type);
      } catch {
        throw new Error(`accessContext.networks[${i}]: "${cidr}" is not a CIDR`);
      }
    }
    return { roles: rule.roles, labels: rule.labels, allowed, cidrs: rule.cidrs ?? [] };
  });
  hours = config.hours ?? {};
}

export function contextRule(principal: Principal, now: number = Date.now()): ContextOutcome {
  const out: ContextOutcome = { permit: true, reasons: [], flags: [], hiddenLabels: [] };
  if (principal.kind === 'anonymous-local' || principal.kind === 'anonymous') return out;
  const window = hours?.[principal.role];
  if (window && !withinHours(window, now)) {
    if (window.action === 'flag') out.flags.push('off-hours');
    else {
      out.permit = false;
      out.reasons.push(`role ${principal.role} is allowed ${window.from}-${window.to} only`);
    }
  }
  for (const rule of networks) {
    const inside = isInside(rule.allowed, principal.address);
    if (rule.roles?.includes(principal.role) && !inside) {
      out.permit = false;
      out.reasons.push(`role ${principal.role} is allowed only from ${rule.cidrs.join(', ')}`);
    }
    if (rule.labels && !inside) {
      for (const code of rule.labels) out.hiddenLabels.push({ system: /^[ULMNRV]$/.test(code) ? confidentialitySystem : sensitivitySystem, code });
    }
  }
  return out;
}

function isInside(allowed: BlockList, address: string): boolean {
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  try {
    return allowed.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
}

function withinHours(h: { from: string; to: string; days?: number[]; timeZone?: string }, now: number): boolean {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: h.timeZone ?? 'UTC', hour: '2-digit', minute: '2-digit', weekday: 'short', hourCycle: 'h23' }).formatToParts(new Date(now));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const minutes = Number(get('hour')) * 60 + Number(get('minute'));
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(get('weekday'));
  if (h.days && !h.days.includes(day)) return false;
  const [fh, fm] = h.from.split(':').map(Number);
  const [th, tm] = h.to.split(':').map(Number);
  const from = fh * 60 + fm;
  const to = th * 60 + tm;
  return from <= to ? minutes >= from && minutes < to : minutes >= from || minutes < to;
}
