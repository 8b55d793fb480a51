/** One result of an automated control check: which HIPAA safeguard, how serious, what to do. */
export interface Finding {
  /** The safeguard, e.g. `164.312(e)(1) transmission security`. */
  control: string;
  severity: 'high' | 'medium' | 'low';
  message: string;
}
