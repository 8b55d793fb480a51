/**
 * The store's tables on PostgreSQL: the embedded schema's twins (sqlite/migrations.ts), so the one
 * search builder (store/sql/search-sql.ts) serves both. Text that is compared by range (prefix
 * searches, sort keys, continuation cursors) is in the "C" collation: byte order, as in SQLite,
 * whatever the database's default, so `x >= p AND x < p || U+10FFFF` is exactly "starts with p".
 * Never edit a released step: append one.
 */
export const storeMigrations: string[] = [
  `
  CREATE SEQUENCE resource_version_seq;
  CREATE TABLE resources (
    rid BIGSERIAL PRIMARY KEY,
    type TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    version INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    last_updated TEXT COLLATE "C" NOT NULL,
    deleted SMALLINT NOT NULL,
    security INTEGER NOT NULL DEFAULT 0,
    UNIQUE (type, id)
  );
  CREATE INDEX resources_type_updated ON resources (type, last_updated);
  CREATE INDEX resources_type_live ON resources (type, deleted, rid);
  -- content: JSON text (identifiers maybe encrypted inside); sealed: the whole body sealed
  -- (ResourceCodec, encryptResourceBodies). One of the two, or neither for a deletion.
  CREATE TABLE resource_versions (
    seq BIGINT PRIMARY KEY,
    rid BIGINT NOT NULL REFERENCES resources (rid),
    type TEXT COLLATE "C" NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT COLLATE "C" NOT NULL,
    method TEXT NOT NULL,
    deleted SMALLINT NOT NULL,
    content TEXT,
    sealed BYTEA,
    UNIQUE (rid, version)
  );
  CREATE INDEX resource_versions_type ON resource_versions (type, seq);
  CREATE INDEX resource_versions_updated ON resource_versions (last_updated);

  CREATE TABLE search_string (rid BIGINT NOT NULL, pid BIGINT NOT NULL, norm TEXT COLLATE "C" NOT NULL, exact TEXT COLLATE "C" NOT NULL, grp INTEGER);
  CREATE INDEX search_string_value ON search_string (pid, norm, rid);
  CREATE INDEX search_string_rid ON search_string (rid, pid);
  CREATE TABLE search_token (rid BIGINT NOT NULL, pid BIGINT NOT NULL, system TEXT COLLATE "C", code TEXT COLLATE "C", text TEXT COLLATE "C", grp INTEGER);
  CREATE INDEX search_token_value ON search_token (pid, code, system, rid);
  CREATE INDEX search_token_text ON search_token (pid, text, rid) WHERE text IS NOT NULL;
  CREATE INDEX search_token_rid ON search_token (rid, pid);
  CREATE TABLE search_reference (rid BIGINT NOT NULL, pid BIGINT NOT NULL, target_type TEXT COLLATE "C", target_id TEXT COLLATE "C", ref TEXT COLLATE "C", grp INTEGER);
  CREATE INDEX search_reference_target ON search_reference (pid, target_id, target_type, rid);
  CREATE INDEX search_reference_ref ON search_reference (pid, ref, rid) WHERE ref IS NOT NULL;
  CREATE INDEX search_reference_rid ON search_reference (rid, pid);
  CREATE TABLE search_date (rid BIGINT NOT NULL, pid BIGINT NOT NULL, lo BIGINT NOT NULL, hi BIGINT NOT NULL, grp INTEGER);
  CREATE INDEX search_date_lo ON search_date (pid, lo, rid);
  CREATE INDEX search_date_hi ON search_date (pid, hi, rid);
  CREATE INDEX search_date_rid ON search_date (rid, pid);
  CREATE TABLE search_number (rid BIGINT NOT NULL, pid BIGINT NOT NULL, lo DOUBLE PRECISION NOT NULL, hi DOUBLE PRECISION NOT NULL, grp INTEGER);
  CREATE INDEX search_number_lo ON search_number (pid, lo, rid);
  CREATE INDEX search_number_rid ON search_number (rid, pid);
  CREATE TABLE search_quantity (rid BIGINT NOT NULL, pid BIGINT NOT NULL, system TEXT COLLATE "C", code TEXT COLLATE "C", unit TEXT COLLATE "C",
    lo DOUBLE PRECISION NOT NULL, hi DOUBLE PRECISION NOT NULL, grp INTEGER);
  CREATE INDEX search_quantity_lo ON search_quantity (pid, lo, rid);
  CREATE INDEX search_quantity_rid ON search_quantity (rid, pid);
  CREATE TABLE search_uri (rid BIGINT NOT NULL, pid BIGINT NOT NULL, uri TEXT COLLATE "C" NOT NULL, grp INTEGER);
  CREATE INDEX search_uri_value ON search_uri (pid, uri, rid);
  CREATE INDEX search_uri_rid ON search_uri (rid, pid);

  -- _text and _content: the narrative's words, and all the resource's words (narrative included),
  -- normalised as string search normalises (postgres/search-text.ts).
  CREATE TABLE search_text (rid BIGINT PRIMARY KEY, narrative TSVECTOR NOT NULL, everything TSVECTOR NOT NULL);
  CREATE INDEX search_text_narrative ON search_text USING GIN (narrative);
  CREATE INDEX search_text_everything ON search_text USING GIN (everything);

  -- Facts about the tables themselves (index_version: see search-index.ts).
  CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
];
