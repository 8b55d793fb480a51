import type { Db } from './open.ts';

/**
 * Schema versions, applied in order to bring any older file up to date in place. Never edit a
 * released entry: append a new one. `user_version` records how far a file has come.
 */
export const migrations: string[] = [
  // 1: resources, every version of them, and the audit log.
  `
  CREATE TABLE resources (
    rid INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    UNIQUE (type, id)
  );
  CREATE INDEX resources_type_updated ON resources (type, last_updated);
  CREATE TABLE resource_versions (
    seq INTEGER PRIMARY KEY,
    rid INTEGER NOT NULL REFERENCES resources (rid),
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    method TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    content TEXT,
    UNIQUE (rid, version)
  );
  CREATE INDEX resource_versions_type ON resource_versions (type, seq);
  CREATE INDEX resource_versions_updated ON resource_versions (last_updated);
  CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    recorded TEXT NOT NULL,
    event TEXT NOT NULL
  );
  CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
  `,
  // 2: search index, one table per search parameter type, rows for current versions only.
  // pid is the parameter's key (src/fhir/search/params.ts paramKey). Each table has a
  // (pid, value) index for filtering and a (rid, pid) index for replacing rows and sorting.
  `
  CREATE TABLE search_string (rid INTEGER NOT NULL, pid INTEGER NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL);
  CREATE INDEX search_string_value ON search_string (pid, norm);
  CREATE INDEX search_string_rid ON search_string (rid, pid);
  CREATE TABLE search_token (rid INTEGER NOT NULL, pid INTEGER NOT NULL, system TEXT, code TEXT, text TEXT);
  CREATE INDEX search_token_value ON search_token (pid, code, system);
  CREATE INDEX search_token_text ON search_token (pid, text) WHERE text IS NOT NULL;
  CREATE INDEX search_token_rid ON search_token (rid, pid);
  CREATE TABLE search_reference (rid INTEGER NOT NULL, pid INTEGER NOT NULL, target_type TEXT, target_id TEXT, ref TEXT);
  CREATE INDEX search_reference_target ON search_reference (pid, target_id, target_type);
  CREATE INDEX search_reference_ref ON search_reference (pid, ref) WHERE ref IS NOT NULL;
  CREATE INDEX search_reference_rid ON search_reference (rid, pid);
  CREATE TABLE search_date (rid INTEGER NOT NULL, pid INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL);
  CREATE INDEX search_date_lo ON search_date (pid, lo);
  CREATE INDEX search_date_hi ON search_date (pid, hi);
  CREATE INDEX search_date_rid ON search_date (rid, pid);
  CREATE TABLE search_number (rid INTEGER NOT NULL, pid INTEGER NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL);
  CREATE INDEX search_number_lo ON search_number (pid, lo);
  CREATE INDEX search_number_rid ON search_number (rid, pid);
  CREATE TABLE search_quantity (rid INTEGER NOT NULL, pid INTEGER NOT NULL, system TEXT, code TEXT, unit TEXT, lo REAL NOT NULL, hi REAL NOT NULL);
  CREATE INDEX search_quantity_lo ON search_quantity (pid, lo);
  CREATE INDEX search_quantity_rid ON search_quantity (rid, pid);
  CREATE TABLE search_uri (rid INTEGER NOT NULL, pid INTEGER NOT NULL, uri TEXT NOT NULL);
  CREATE INDEX search_uri_value ON search_uri (pid, uri);
  CREATE INDEX search_uri_rid ON search_uri (rid, pid);
  -- The live resources of a type in rid order: the default search order, read without sorting.
  CREATE INDEX resources_type_live ON resources (type, deleted);
  `,
  // 3: composite search parameters. Their parts are indexed in the tables above under keys of
  // their own (params.ts componentKey); grp ties the parts found on one base node together.
  // Files from before are re-indexed once on open, which adds those rows.
  `
  ALTER TABLE search_string ADD COLUMN grp INTEGER;
  ALTER TABLE search_token ADD COLUMN grp INTEGER;
  ALTER TABLE search_reference ADD COLUMN grp INTEGER;
  ALTER TABLE search_date ADD COLUMN grp INTEGER;
  ALTER TABLE search_number ADD COLUMN grp INTEGER;
  ALTER TABLE search_quantity ADD COLUMN grp INTEGER;
  ALTER TABLE search_uri ADD COLUMN grp INTEGER;
  `,
  // 4: full text for _text (the narrative) and _content (all of a resource's text). Contentless:
  // the index holds tokens, not a second copy of the text; rowid is the resource's rid.
  `
  CREATE VIRTUAL TABLE search_text USING fts5(narrative, content, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');
  `,
  // 5: facts about the file itself; index_version says which rows the search index holds
  // (search-index.ts ensureSearchIndex), so a file indexed the old way is re-indexed on open.
  `
  CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
  // 6: the value indexes end with rid, so listing a criterion's matches reads the index alone
  // instead of fetching every row of the table for its rid.
  `
  DROP INDEX search_string_value; CREATE INDEX search_string_value ON search_string (pid, norm, rid);
  DROP INDEX search_token_value; CREATE INDEX search_token_value ON search_token (pid, code, system, rid);
  DROP INDEX search_token_text; CREATE INDEX search_token_text ON search_token (pid, text, rid) WHERE text IS NOT NULL;
  DROP INDEX search_reference_target; CREATE INDEX search_reference_target ON search_reference (pid, target_id, target_type, rid);
  DROP INDEX search_reference_ref; CREATE INDEX search_reference_ref ON search_reference (pid, ref, rid) WHERE ref IS NOT NULL;
  DROP INDEX search_date_lo; CREATE INDEX search_date_lo ON search_date (pid, lo, rid);
  DROP INDEX search_date_hi; CREATE INDEX search_date_hi ON search_date (pid, hi, rid);
  DROP INDEX search_number_lo; CREATE INDEX search_number_lo ON search_number (pid, lo, rid);
  DROP INDEX search_quantity_lo; CREATE INDEX search_quantity_lo ON search_quantity (pid, lo, rid);
  DROP INDEX search_uri_value; CREATE INDEX search_uri_value ON search_uri (pid, uri, rid);
  `,
  // 7: the known security labels of each resource as bits (fhir/security-label-bits.ts), so a
  // search held to a clearance tests the row itself. Filled in by the re-index of index_version 6.
  `
  ALTER TABLE resources ADD COLUMN security INTEGER NOT NULL DEFAULT 0;
  `,
  // 8: AuditEvent is the audit trail (rest/audit-trail.ts), read by admins and auditors only.
  // AuditEvents clients stored as resources before are moved out of the store (every version,
  // kept in this table, served by nothing), so no search, include or history can reach them.
  `
  CREATE TABLE IF NOT EXISTS quarantined_audit_events AS SELECT * FROM resource_versions WHERE 0;
  INSERT INTO quarantined_audit_events SELECT * FROM resource_versions WHERE type = 'AuditEvent';
  DELETE FROM search_string WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
  DELETE FROM search_token WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
  DELETE FROM search_reference WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
  DELETE FROM search_date WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
  DELETE FROM search_number WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
  DELETE FROM search_quantity WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
  DELETE FROM search_uri WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
  DELETE FROM search_text WHERE rowid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
  DELETE FROM resource_versions WHERE type = 'AuditEvent';
  DELETE FROM resources WHERE type = 'AuditEvent';
  `,
];

/** Brings the file to the current schema; returns the version it was at before. */
export function migrate(db: Db, steps: string[] = migrations, what = 'store file'): number {
  const from = db.pragma('user_version', { simple: true }) as number;
  const all = steps.length;
  if (from > all) {
    throw new Error(`The ${what} has schema version ${from}, newer than this Bastion (${all}); upgrade Bastion`);
  }
  for (let v = from; v < all; v++) {
    db.transaction(() => {
      db.exec(steps[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return from;
}
