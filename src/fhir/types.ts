/** A FHIR resource as parsed JSON. Structure is checked by validation, not by the type system. */
export interface Resource {
  resourceType: string;
  id?: string;
  meta?: Meta;
  [element: string]: unknown;
}

export interface Meta {
  versionId?: string;
  lastUpdated?: string;
  source?: string;
  profile?: string[];
  security?: Coding[];
  tag?: Coding[];
  [element: string]: unknown;
}

export interface Coding {
  system?: string;
  version?: string;
  code?: string;
  display?: string;
  userSelected?: boolean;
}

export interface Reference {
  reference?: string;
  type?: string;
  identifier?: { system?: string; value?: string };
  display?: string;
}

export type IssueSeverity = 'fatal' | 'error' | 'warning' | 'information';

export interface OperationOutcomeIssue {
  severity: IssueSeverity;
  code: string;
  diagnostics?: string;
  expression?: string[];
  details?: { text?: string; coding?: Coding[] };
}

export interface OperationOutcome extends Resource {
  resourceType: 'OperationOutcome';
  issue: OperationOutcomeIssue[];
}

export interface BundleEntry {
  fullUrl?: string;
  resource?: Resource;
  search?: { mode?: 'match' | 'include' | 'outcome'; score?: number };
  request?: {
    method: string;
    url: string;
    ifNoneMatch?: string;
    ifModifiedSince?: string;
    ifMatch?: string;
    ifNoneExist?: string;
  };
  response?: {
    status: string;
    location?: string;
    etag?: string;
    lastModified?: string;
    outcome?: Resource;
  };
}

export interface Bundle extends Resource {
  resourceType: 'Bundle';
  type: string;
  total?: number;
  link?: { relation: string; url: string }[];
  entry?: BundleEntry[];
  timestamp?: string;
}
