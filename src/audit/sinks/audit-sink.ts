/**
 * A continuous copy of the audit trail for a SIEM. The chained trail in the data dir stays the
 * record of truth: a sink gets each batch only after it is committed there, so a sink that is
 * slow, down or full can lose copies but never the records, and never holds up a request.
 */
export interface AuditSink {
  /** Events already committed to the chained trail, in order; must not throw nor block (buffer internally). */
  write(events: { seq: number; event: Record<string, unknown> }[]): void;
  /** Flush what is buffered (best effort, bounded time) and release resources. */
  close(): Promise<void>;
}

/**
 * What a sink reports through its `onError`. Messages name the sink, the target and the error's
 * code or name, never an event's content (PHI), so they can go to the server log as they are.
 */
export class AuditSinkError extends Error {
  override name = 'AuditSinkError';
  /** `ndjson` or `syslog`. */
  readonly sink: string;
  /** Events that never left the sink, when that is what is reported. */
  readonly dropped: number;

  constructor(sink: string, message: string, options: { cause?: unknown; dropped?: number } = {}) {
    super(`audit ${sink} sink: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.sink = sink;
    this.dropped = options.dropped ?? 0;
  }
}

/** An error's code (ECONNREFUSED, ERR_TLS_CERT_ALTNAME_INVALID, ...) or name, never its message. */
export function errorCode(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown } | null;
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.name === 'string') return e.name;
  return 'error';
}
