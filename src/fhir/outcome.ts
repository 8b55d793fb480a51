import type { OperationOutcome, OperationOutcomeIssue, IssueSeverity } from './types.ts';

/**
 * An error a client caused (or a condition it must be told about), carrying the HTTP status and
 * the OperationOutcome issues that explain it. Anything thrown that is not a FhirError is a bug
 * and is reported as a generic 500 without details.
 */
export class FhirError extends Error {
  readonly status: number;
  readonly issues: OperationOutcomeIssue[];
  readonly headers: Record<string, string>;

  constructor(status: number, issues: OperationOutcomeIssue[] | string, code = 'invalid', headers: Record<string, string> = {}) {
    const list = typeof issues === 'string' ? [issue('error', code, issues)] : issues;
    super(list.map((i) => i.diagnostics ?? i.code).join('; '));
    this.status = status;
    this.issues = list;
    this.headers = headers;
  }

  outcome(): OperationOutcome {
    return operationOutcome(this.issues);
  }
}

export function issue(severity: IssueSeverity, code: string, diagnostics: string, expression?: string[]): OperationOutcomeIssue {
  const out: OperationOutcomeIssue = { severity, code, diagnostics };
  if (expression && expression.length > 0) out.expression = expression;
  return out;
}

export function operationOutcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

export const badRequest = (msg: string, expression?: string[]) => new FhirError(400, [issue('error', 'invalid', msg, expression)]);
export const notFound = (msg: string) => new FhirError(404, [issue('error', 'not-found', msg)]);
export const gone = (msg: string) => new FhirError(410, [issue('error', 'deleted', msg)]);
export const conflict = (msg: string) => new FhirError(409, [issue('error', 'conflict', msg)]);
export const preconditionFailed = (msg: string) => new FhirError(412, [issue('error', 'conflict', msg)]);
export const unprocessable = (issues: OperationOutcomeIssue[]) => new FhirError(422, issues);
export const notSupported = (msg: string) => new FhirError(400, [issue('error', 'not-supported', msg)]);
