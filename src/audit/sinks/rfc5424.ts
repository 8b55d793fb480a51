/**
 * AuditEvents as RFC 5424 syslog messages, framed for TLS transport by octet counting (RFC 5425).
 * Pure, so the wire format can be tested without a socket.
 */

export interface SyslogHeader {
  /** 0-23; 10 is authpriv, where security events belong. */
  facility: number;
  hostname: string;
  appName: string;
  procId?: string;
}

/**
 * Our SD-ID. 32473 is the enterprise number RFC 5612 reserves for documentation; a deployment
 * with its own IANA number would put it here.
 */
export const sdId = 'bastion@32473';

const BOM = '\uFEFF';

export function formatSyslog(seq: number, event: Record<string, unknown>, header: SyslogHeader): string {
  const pri = header.facility * 8 + severityOf(event);
  const sd = structuredData([
    ['seq', String(seq)],
    ['outcome', stringOf(event.outcome)],
    ['action', stringOf(event.action)],
    ['event', authEventOf(event)],
  ]);
  return [
    `<${pri}>1`,
    timestampOf(event.recorded),
    headerField(header.hostname, 255),
    headerField(header.appName, 48),
    headerField(header.procId ?? String(process.pid), 128),
    msgIdOf(event),
    `${sd} ${BOM}${JSON.stringify(event)}`,
  ].join(' ');
}

/** `MSGLEN SP SYSLOG-MSG`: the length counts octets of the UTF-8 message, not characters. */
export function frame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

/**
 * Success is informational, the client's failure a warning, the server's an error. Break-the-glass
 * that succeeded is a notice: legitimate, but what a SIEM should surface. Unknown outcomes too.
 */
export function severityOf(event: Record<string, unknown>): number {
  switch (event.outcome) {
    case '0':
      return isBreakGlass(event) ? 5 : 6;
    case '4':
      return 4;
    case '8':
    case '12':
      return 3;
    default:
      return 5;
  }
}

/** The subtype's code (`read`, `search-type`, `110122`), so a SIEM can route without parsing the JSON. */
export function msgIdOf(event: Record<string, unknown>): string {
  const subtype = Array.isArray(event.subtype) ? (event.subtype[0] as { code?: unknown } | undefined) : undefined;
  return headerField(stringOf(subtype?.code), 32);
}

/** SD-PARAM values are UTF-8 inside quotes; `"`, `\` and `]` would end them early. */
export function escapeParamValue(value: string): string {
  return value.replace(/["\\\]]/g, '\\$&');
}

// FHIR instants are RFC 3339 already; syslog allows at most six fraction digits and no leap second.
const instant = /^(\d{4}-\d{2}-\d{2}T\d{2}:[0-5]\d:[0-5]\d)(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

function timestampOf(recorded: unknown): string {
  const m = typeof recorded === 'string' ? instant.exec(recorded) : null;
  if (!m) return '-';
  return `${m[1]}${m[2] ? `.${m[2].slice(0, 6)}` : ''}${m[3]}`;
}

/** Header fields are printable US-ASCII without spaces, bounded; empty is the NILVALUE. */
function headerField(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? '-' : clean;
}

function structuredData(params: [string, string][]): string {
  const present = params.filter(([, v]) => v !== '');
  return `[${sdId}${present.map(([k, v]) => ` ${k}="${escapeParamValue(v)}"`).join('')}]`;
}

function stringOf(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '';
}

type Detail = { type?: unknown; valueString?: unknown };

function detailsOf(event: Record<string, unknown>): Detail[] {
  const entities = Array.isArray(event.entity) ? (event.entity as { detail?: unknown }[]) : [];
  return entities.flatMap((e) => (Array.isArray(e?.detail) ? (e.detail as Detail[]) : []));
}

/** An authentication event's kind (login-failed, locked-out, break-glass, ...), which the DICOM subtype leaves out. */
function authEventOf(event: Record<string, unknown>): string {
  return stringOf(detailsOf(event).find((d) => d?.type === 'event')?.valueString);
}

function isBreakGlass(event: Record<string, unknown>): boolean {
  if (detailsOf(event).some((d) => (d?.type === 'access-decision' && d.valueString === 'break-the-glass') || (d?.type === 'event' && d.valueString === 'break-glass'))) return true;
  const agents = Array.isArray(event.agent) ? (event.agent as { purposeOfUse?: unknown }[]) : [];
  return agents.some((a) => Array.isArray(a?.purposeOfUse) && (a.purposeOfUse as { coding?: { code?: unknown }[] }[]).some((p) => p?.coding?.some?.((c) => c?.code === 'BTG')));
}
