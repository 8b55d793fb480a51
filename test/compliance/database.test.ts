import { test } from 'node:test';
import assert from 'node:assert/strict';
import { databaseFindings } from '../../src/compliance/database.ts';

const db = (url: string) => ({ url, schema: 'public', poolSize: 10 });
const severities = (url: string, encryptResourceBodies = true) =>
  databaseFindings({ database: db(url), encryptResourceBodies }).map((f) => `${f.severity}:${f.control.slice(0, 12)}`);

test('the embedded store has no database findings', () => {
  assert.deepEqual(databaseFindings({ encryptResourceBodies: false }), []);
});

test('a remote PostgreSQL without TLS is high, TLS without verifying the server medium, verify-full none', () => {
  assert.ok(severities('postgres://b@db.example:5432/x').includes('high:164.312(e)(1'));
  assert.ok(severities('postgres://b@db.example:5432/x?sslmode=prefer').includes('high:164.312(e)(1'));
  assert.ok(severities('postgres://b@db.example:5432/x?sslmode=require').includes('medium:164.312(e)(1'));
  assert.ok(!severities('postgres://b@db.example:5432/x?sslmode=verify-full').some((s) => s.includes('164.312(e)')));
  // Loopback: the hop never leaves the machine.
  assert.ok(!severities('postgres://b@127.0.0.1:5432/x').some((s) => s.includes('164.312(e)')));
});

test('bodies stored as plain JSON in PostgreSQL are high; the index in clear is always said (low)', () => {
  assert.ok(severities('postgres://b@127.0.0.1/x', false).includes('high:164.312(a)(2'));
  assert.deepEqual(severities('postgres://b@127.0.0.1/x', true), ['low:164.312(a)(2']);
});
