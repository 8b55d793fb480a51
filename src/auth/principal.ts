/** Who is asking. Every request carries one, decided before anything else happens. */
export interface Principal {
  kind: 'user' | 'client' | 'anonymous-local';
  /** A stable identifier for the audit trail (user id, client id). */
  id: string;
  role: 'patient' | 'nurse' | 'physician' | 'lab-technician' | 'billing' | 'researcher' | 'admin' | 'system' | 'local';
  scopes: string[];
  /** The network address the request came from. */
  address: string;
}
