/** Where something came from: a file, and when known the line (NDJSON) and the entry (Bundle). */
export interface Source {
  file: string;
  line?: number;
  entry?: number;
}

export interface ImportIssue extends Source {
  message: string;
}

/** What happened to the resources of one type. */
export interface TypeCounts {
  /** Stored as version 1 (or over a deleted resource). */
  created: number;
  /** Stored as a new version of an existing resource whose content differed. */
  updated: number;
  /** Already stored with the same content: nothing written (a re-run). */
  unchanged: number;
}

export interface ImportReport {
  /** Files read (skipped ones excluded). */
  files: number;
  bytes: number;
  seconds: number;
  byType: Record<string, TypeCounts>;
  /** Lines, entries or files that were not imported, with why. Any error means exit code 1. */
  errors: ImportIssue[];
  /** Files skipped because they are not FHIR (e.g. a bulk export's log.ndjson). Not errors. */
  skipped: ImportIssue[];
}

export type Outcome = keyof TypeCounts;

export function newReport(): ImportReport {
  return { files: 0, bytes: 0, seconds: 0, byType: {}, errors: [], skipped: [] };
}

export function count(report: ImportReport, resourceType: string, outcome: Outcome, n = 1): void {
  const c = (report.byType[resourceType] ??= { created: 0, updated: 0, unchanged: 0 });
  c[outcome] += n;
}

/** Resources imported or found unchanged, over all types. */
export function totalResources(report: ImportReport): number {
  let n = 0;
  for (const c of Object.values(report.byType)) n += c.created + c.updated + c.unchanged;
  return n;
}

/** `file:line (entry n)`, as compilers print locations, so editors and terminals can jump to it. */
export function where(s: Source): string {
  let out = s.file;
  if (s.line !== undefined) out += `:${s.line}`;
  if (s.entry !== undefined) out += ` (entry ${s.entry})`;
  return out;
}

const fmt = (n: number) => n.toLocaleString('en-US');

/** The summary the CLI prints: totals, a table of resources per type, then every error and skipped file. */
export function formatSummary(report: ImportReport): string {
  const total = totalResources(report);
  const rate = report.seconds > 0 ? Math.round(total / report.seconds) : total;
  const lines: string[] = [];
  lines.push(
    `Imported ${fmt(total)} resource${total === 1 ? '' : 's'} from ${fmt(report.files)} file${report.files === 1 ? '' : 's'} ` +
      `in ${report.seconds.toFixed(1)} s (${fmt(rate)} resources/s)`,
  );
  const types = Object.keys(report.byType).sort();
  if (types.length > 0) {
    const rows: string[][] = [['type', 'created', 'updated', 'unchanged']];
    const sum = { created: 0, updated: 0, unchanged: 0 };
    for (const t of types) {
      const c = report.byType[t];
      rows.push([t, fmt(c.created), fmt(c.updated), fmt(c.unchanged)]);
      sum.created += c.created;
      sum.updated += c.updated;
      sum.unchanged += c.unchanged;
    }
    rows.push(['total', fmt(sum.created), fmt(sum.updated), fmt(sum.unchanged)]);
    const widths = rows[0].map((_, col) => Math.max(...rows.map((r) => r[col].length)));
    lines.push('');
    for (const r of rows) lines.push(r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col]))).join('  '));
  }
  if (report.skipped.length > 0) {
    lines.push('', `Skipped ${report.skipped.length} file${report.skipped.length === 1 ? '' : 's'} (not FHIR):`);
    for (const s of report.skipped) lines.push(`  ${where(s)}: ${s.message}`);
  }
  if (report.errors.length > 0) {
    lines.push('', `${fmt(report.errors.length)} error${report.errors.length === 1 ? '' : 's'} (these were not imported; everything else was):`);
    for (const e of report.errors) lines.push(`  ${where(e)}: ${e.message}`);
  } else {
    lines.push('', 'No errors.');
  }
  return lines.join('\n') + '\n';
}
