/** The FHIR interaction a request asks for, as the access engine and the audit trail see it. */
export type InteractionKind =
  | 'read' | 'vread' | 'update' | 'patch' | 'delete' | 'history-instance' | 'history-type' | 'history-system'
  | 'create' | 'search-type' | 'search-system' | 'batch' | 'transaction' | 'capabilities' | 'operation';

export interface Interaction {
  kind: InteractionKind;
  resourceType?: string;
  id?: string;
  versionId?: string;
  /** Conditional operations and searches: the query string as received. */
  query?: string;
  operation?: string;
  /** A compartment search: the compartment it is confined to. */
  compartment?: { type: string; id: string };
}

/** C/R/U/D/E, the AuditEvent action code of each interaction. */
export function actionOf(kind: InteractionKind): 'C' | 'R' | 'U' | 'D' | 'E' {
  switch (kind) {
    case 'create': return 'C';
    case 'update': case 'patch': return 'U';
    case 'delete': return 'D';
    case 'batch': case 'transaction': case 'operation': return 'E';
    default: return 'R';
  }
}
