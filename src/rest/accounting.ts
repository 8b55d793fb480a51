import { randomUUID } from 'node:crypto';
import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { AuditRecordFacts } from '../audit/audit-record.ts';
import { purposesOfRecord, renderAuditEvent } from '../audit/audit-event.ts';
import { parseAuditSearch } from '../audit/audit-search.ts';
import { badRequest } from '../fhir/outcome.ts';
import { parseDateRange } from '../fhir/datetime.ts';
import { escapeHtml } from '../auth/server/provider.ts';
import { findAuditRecords, type FoundRecord } from './audit-trail.ts';
import { auditTrailReaders } from '../access/audit-trail-access.ts';

/** HIPAA §164.528(a): an accounting covers up to six years before the request. */
const defaultYears = 6;
/** A longer accounting is cut here and says so (narrow the period for the rest). */
const maxEntries = 10_000;

/**
 * Patient/[id]/$accounting-of-disclosures: who accessed or received the patient's data, when,
 * from where and why, over a period (`start`, `end`; by default the last six years), as a FHIR
 * document: a Composition whose narrative is the table a privacy officer hands over, followed by
 * the AuditEvents it was drawn from. Counted: successful interactions that returned, touched or
 * aimed at the patient's data, by anyone but the patient themselves.
 */
export async function accountingOfDisclosures(ctx: RestContext, req: FhirRequest, patientId: string): Promise<FhirResponse> {
  const { start, end } = period(req);
  const fixed: [string, string][] = [['patient', `Patient/${patientId}`], ['date', `ge${start}`]];
  if (end) fixed.push(['date', `lt${end}`]);
  const search = parseAuditSearch(fixed, { defaultCount: maxEntries, maxCount: maxEntries }, ctx.config.baseUrl);
  search.tests.push((f) => isDisclosure(f, patientId));
  const found = await findAuditRecords(ctx, search, maxEntries + 1);
  const records = found.records.slice(0, maxEntries);
  const complete = found.records.length <= maxEntries && found.stoppedAt === undefined;
  const base = ctx.config.baseUrl;
  const now = new Date().toISOString();
  // The patient sees what concerns them; the full record (other patients, the query, the access
  // decision) stays with those who read the trail.
  const full = auditTrailReaders.includes(ctx.principal.role);
  const shown = (f: AuditRecordFacts) => (full ? f : asSeenByPatient(f, patientId));
  const composition = {
    resourceType: 'Composition',
    id: randomUUID(),
    status: 'final',
    type: { text: 'Accounting of disclosures (HIPAA §164.528)' },
    subject: { reference: `Patient/${patientId}` },
    date: now,
    author: [{ display: 'Bastion audit trail' }],
    title: `Accounting of disclosures of Patient/${patientId}`,
    event: [{ period: { start, ...(end ? { end } : {}) } }],
    section: [{
      title: 'Disclosures',
      text: { status: 'generated', div: table(records, patientId, start, end, complete) },
      entry: records.map((r) => ({ reference: `AuditEvent/${r.seq}` })),
      ...(records.length === 0 ? { emptyReason: { text: 'No disclosures in this period' } } : {}),
    }],
  };
  const bundle = {
    resourceType: 'Bundle',
    identifier: { system: 'urn:ietf:rfc:3986', value: `urn:uuid:${randomUUID()}` },
    type: 'document',
    timestamp: now,
    entry: [
      { fullUrl: `urn:uuid:${composition.id}`, resource: composition },
      ...records.map((r) => ({ fullUrl: `${base}/AuditEvent/${r.seq}`, resource: renderAuditEvent(shown(r.facts), String(r.seq)) })),
    ],
  };
  return { status: 200, headers: {}, json: JSON.stringify(bundle), entities: records.map((r) => `AuditEvent/${r.seq}`) };
}

function period(req: FhirRequest): { start: string; end?: string } {
  const param = (name: string) => req.query.find(([n]) => n === name)?.[1];
  for (const [name] of req.query) if (name !== 'start' && name !== 'end' && !name.startsWith('_')) throw badRequest(`Unknown parameter '${name}' (start, end)`);
  const start = param('start');
  const end = param('end');
  for (const [name, value] of [['start', start], ['end', end]] as const) {
    if (value !== undefined && !parseDateRange(value)) throw badRequest(`${name} must be a date (YYYY[-MM[-DD]] or a dateTime), not '${value}'`);
  }
  const sixYearsAgo = new Date();
  sixYearsAgo.setUTCFullYear(sixYearsAgo.getUTCFullYear() - defaultYears);
  // `end` names the last day (or instant) included: its range's end is exclusive.
  const endInstant = end ? new Date(parseDateRange(end)!.end).toISOString() : undefined;
  return { start: start ? new Date(parseDateRange(start)!.start).toISOString() : sixYearsAgo.toISOString(), ...(endInstant ? { end: endInstant } : {}) };
}

/**
 * A record as the patient may see it: when, who (role, app), from where, why, what kind of access
 * and to which kinds of record; not the other records or patients it touched, the query, nor the
 * access decision's details.
 */
function asSeenByPatient(f: AuditRecordFacts, patientId: string): AuditRecordFacts {
  const narrowed: AuditRecordFacts = { at: f.at, do: f.do, st: f.st, who: f.who, ip: f.ip, pt: [patientId] };
  for (const key of ['rl', 'fu', 'app', 'pou', 'op'] as const) if (f[key] !== undefined) (narrowed as unknown as Record<string, unknown>)[key] = f[key];
  if (f.rs?.includes('break-the-glass')) narrowed.rs = ['break-the-glass'];
  return narrowed;
}

/** Someone other than the patient successfully reached the patient's data. */
function isDisclosure(f: AuditRecordFacts, patientId: string): boolean {
  if (f.do === 'authn' || f.st >= 400 || f.why) return false;
  const self = f.rl === 'patient' && (f.fu === `Patient/${patientId}` || f.pc === patientId);
  return !self;
}

function table(records: FoundRecord[], patientId: string, start: string, end: string | undefined, complete: boolean): string {
  const e = escapeHtml;
  const rows = records.map(({ facts: f }) => {
    const who = [f.fu ?? f.who, f.rl ? `(${f.rl})` : '', f.app ? `using ${f.app}` : ''].filter(Boolean).join(' ');
    const why = purposesOfRecord(f).map((p) => p.code).join(', ') || 'not stated';
    const what = [f.do + (f.op ? ` $${f.op}` : ''), ...typesOf(f)].join(': ');
    return `<tr><td>${e(f.at)}</td><td>${e(who)}</td><td>${e(f.ip)}</td><td>${e(why)}</td><td>${e(what)}</td></tr>`;
  });
  const note = complete ? '' : `<p>Only the ${records.length} most recent disclosures are listed: ask for a shorter period for the earlier ones.</p>`;
  return `<div xmlns="http://www.w3.org/1999/xhtml"><p>Disclosures of the record of Patient/${e(patientId)} from ${e(start)}${end ? ` to ${e(end)}` : ' to now'}: ${records.length}.</p>${note}`
    + `<table><thead><tr><th>When</th><th>Who</th><th>From where</th><th>Why</th><th>What</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

/** The kinds of records reached, e.g. `Observation, Condition`. */
function typesOf(f: AuditRecordFacts): string[] {
  const types = new Set<string>();
  for (const w of f.what ?? []) types.add(w.slice(0, w.indexOf('/')));
  return [[...types].join(', ')].filter(Boolean);
}
