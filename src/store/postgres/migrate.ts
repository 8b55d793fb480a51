import type { Database } from './database.ts';

/**
 * Brings one component's tables (`store`, `audit`, `auth`) to the current schema, in order, each
 * step in its own transaction with its version. Never edit a released step: append one. Nodes
 * starting together take an advisory lock, so each step runs once. Returns the version it was at.
 */
export async function migrate(db: Database, component: string, steps: readonly string[]): Promise<number> {
  return db.transaction(async (conn) => {
    await conn.query(`SELECT pg_advisory_xact_lock(hashtext('bastion-migrate'))`);
    await conn.query('CREATE TABLE IF NOT EXISTS bastion_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
    const row = (await conn.query<{ version: number }>('SELECT version FROM bastion_schema WHERE component = ?', [component]))[0];
    const from = row?.version ?? 0;
    if (from > steps.length) {
      throw new Error(`The ${component} tables have schema version ${from}, newer than this Bastion (${steps.length}); upgrade Bastion`);
    }
    for (let v = from; v < steps.length; v++) {
      // One transaction for the lot: a step that fails leaves the schema where it was.
      await conn.exec(steps[v]);
    }
    if (from < steps.length) {
      await conn.query(
        'INSERT INTO bastion_schema (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version',
        [component, steps.length],
      );
    }
    return from;
  });
}

/** Creates the schema when missing (on a connection whose search_path already names it). */
export async function ensureSchema(db: Database): Promise<void> {
  // The name was checked against schemaName: safe to put in the statement.
  await db.exec(`CREATE SCHEMA IF NOT EXISTS ${db.schema}`);
}
