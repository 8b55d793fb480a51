import pg from 'pg';

/** A bound value: what the store's SQL passes (arrays for `= ANY(?)`, bytes for sealed bodies). */
export type PgArg = string | number | null | Buffer | Uint8Array | readonly string[] | readonly number[];

export interface PgOptions {
  /** `postgres://user:password@host:port/database?sslmode=...`, as libpq takes it. */
  url: string;
  /** The schema Bastion's tables live in (created when missing); default `public`. */
  schema?: string;
  /** Pooled connections at most; default 10. */
  max?: number;
  /**
   * For work that must give up rather than wait (the rate-limit exchange): a connection, a
   * statement and its answer each get this long, and idle sockets are kept alive so a dead peer is
   * noticed. Unset: no limit (the store's own work waits for the database).
   */
  timeoutMs?: number;
}

/** One connection: the pool's, or a transaction's. */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, args?: readonly PgArg[]): Promise<T[]>;
  /** Runs statements without parameters (several, separated by semicolons: a migration). */
  exec(sql: string): Promise<void>;
}

const int8 = 20;
const numeric = 1700;
// Positions, counts and rids are bigint in the schema and within 2^53 in practice: numbers, not
// strings, as the store interface hands them on.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === int8 || oid === numeric) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/**
 * A schema name Bastion takes: plain (it is written into statements) and at most 50 characters,
 * so its notification channels (`bastion_auth_<schema>`) stay within PostgreSQL's 63 (pg_notify
 * refuses a longer one: every write would fail).
 */
export const schemaName = /^[a-z_][a-z0-9_]{0,49}$/;

/**
 * A pool of connections to one PostgreSQL database, the store's only way in. SQL is written with
 * `?` placeholders (as for SQLite, so the search builder serves both), turned into `$n` here once
 * per statement text; values only ever travel as bound parameters. Statements run often are
 * prepared once per connection, by name.
 */
export class Database implements Queryable {
  readonly pool: pg.Pool;
  readonly schema: string;

  constructor(options: PgOptions) {
    const schema = options.schema ?? 'public';
    if (!schemaName.test(schema)) throw new Error(`schema '${schema}' is not a plain lower-case SQL name of at most 50 characters`);
    this.schema = schema;
    const { url, sessionOptions } = withoutSessionOptions(options.url);
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.max ?? 10,
      types,
      // Every connection works in Bastion's schema; UTC, so text times never shift. After the
      // URL's own options (a statement_timeout, say): the last of a setting is the one taken.
      options: `${sessionOptions ? `${sessionOptions} ` : ''}-c search_path=${schema} -c TimeZone=UTC`,
      application_name: 'bastion',
      ...(options.timeoutMs ? { connectionTimeoutMillis: options.timeoutMs, query_timeout: options.timeoutMs, statement_timeout: options.timeoutMs, keepAlive: true } : {}),
    });
    // An idle connection the server drops (restart, failover) is an error on the pool, not the process.
    this.pool.on('error', () => undefined);
  }

  query<T = Record<string, unknown>>(sql: string, args: readonly PgArg[] = []): Promise<T[]> {
    return run<T>(this.pool, sql, args);
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  /**
   * Runs `work` on one connection inside BEGIN/COMMIT (READ COMMITTED); anything it throws rolls
   * back and is thrown on.
   */
  async transaction<T>(work: (conn: Queryable) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      const conn: Queryable = { query: (sql, args = []) => run(client, sql, args), exec: async (sql) => void (await client.query(sql)) };
      await client.query('BEGIN');
      try {
        const result = await work(conn);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        // On a connection the server ended this fails too, and withClient throws the cause.
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  /**
   * One pooled connection for `work` (a transaction, a session-level lock, a cursor), released
   * after. The server may end the connection between two statements (a restart, a failover): that
   * is an 'error' event on the client, which must be heard (unheard, it would stop the process);
   * the next statement fails instead, with that cause, and the broken client is discarded.
   */
  async withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    const onError = (err: Error) => (broken = err);
    client.on('error', onError);
    try {
      return await work(client);
    } catch (err) {
      throw broken ?? err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  /** A connection of its own, outside the pool (LISTEN needs one that stays). */
  dedicatedClient(): pg.Client {
    return new pg.Client({ connectionString: this.pool.options.connectionString, types, options: this.pool.options.options, application_name: 'bastion' });
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * The URL without its `options` parameter, and that parameter: pg lets the URL's replace the
 * pool's, and Bastion's schema and time zone would be lost (its tables made in `public`).
 */
function withoutSessionOptions(text: string): { url: string; sessionOptions: string | undefined } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { url: text, sessionOptions: undefined };
  }
  const sessionOptions = url.searchParams.get('options') ?? undefined;
  url.searchParams.delete('options');
  return { url: sessionOptions === undefined ? text : url.toString(), sessionOptions };
}

async function run<T>(on: pg.Pool | pg.PoolClient, sql: string, args: readonly PgArg[]): Promise<T[]> {
  const text = numbered(sql);
  const result = await on.query({ text, values: args as unknown[], name: statementName(text) });
  return result.rows as T[];
}

const numberedCache = new Map<string, string>();

/**
 * What a `?` inside is not a placeholder in: quoted literals (E'...' with its backslash escapes) and
 * identifiers, comments, dollar-quoted text.
 */
const notPlaceholders = /[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\/\*[\s\S]*?\*\/|\$([A-Za-z_]\w*)?\$[\s\S]*?\$\1\$|\?/g;

/** `?` placeholders as `$1, $2, ...`, outside quoted literals and identifiers, comments and dollar-quoted text. */
export function numbered(sql: string): string {
  let out = numberedCache.get(sql);
  if (out !== undefined) return out;
  let n = 0;
  out = sql.replace(notPlaceholders, (m) => (m === '?' ? `$${++n}` : m));
  if (numberedCache.size >= 2000) numberedCache.delete(numberedCache.keys().next().value!);
  numberedCache.set(sql, out);
  return out;
}

const names = new Map<string, string>();
let named = 0;

/**
 * Named statements are parsed and planned once per connection. The fixed statements (reads,
 * writes, audit) come first; searches have a text per shape, and each connection keeps every
 * statement it prepared, so only the first thousand texts get a name.
 */
function statementName(text: string): string | undefined {
  let name = names.get(text);
  if (name === undefined && named < 1000) names.set(text, (name = `b${++named}`));
  return name;
}

/** PostgreSQL's error codes the store turns into FHIR outcomes. */
export const pgCodes = {
  uniqueViolation: '23505',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  programLimitExceeded: '54000',
} as const;

export function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}
