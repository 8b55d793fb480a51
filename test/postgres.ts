import { after } from 'node:test';
import { randomBytes } from 'node:crypto';
import { Database } from '../src/store/postgres/database.ts';

/**
 * The PostgreSQL the tests use: `BASTION_TEST_POSTGRES_URL` (scripts/test-postgres.sh starts one
 * on loopback and prints it; `.ci/run` sets it). Without it the PostgreSQL tests are skipped
 * locally, and fail in CI, where skipping would hide them.
 */
export const postgresUrl = process.env.BASTION_TEST_POSTGRES_URL;

if (!postgresUrl && process.env.CI) {
  throw new Error('CI=true but BASTION_TEST_POSTGRES_URL is not set: the PostgreSQL tests cannot run (see scripts/test-postgres.sh)');
}

/** The reason to skip PostgreSQL tests, or false when they can run (pass as `{ skip: pgSkip }`). */
export const pgSkip: string | false = postgresUrl ? false : 'BASTION_TEST_POSTGRES_URL is not set (scripts/test-postgres.sh starts a PostgreSQL for the tests)';

/**
 * A schema of its own for a test's tables, dropped with everything in it when the test file ends.
 * Schemas are far quicker to make than databases, and tests running side by side never meet.
 */
export function freshSchema(prefix = 't'): string {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  made.push(schema);
  return schema;
}

const made: string[] = [];
after(async () => {
  if (!postgresUrl || made.length === 0) return;
  const db = new Database({ url: postgresUrl, max: 1 });
  try {
    for (const schema of made.splice(0)) await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await db.close();
  }
});
