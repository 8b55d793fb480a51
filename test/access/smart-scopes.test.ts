import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { covers, narrowScopes, parseResourceScope, parseScopes } from '../../src/access/smart-scopes.ts';

const perms = (s: string) => [...(parseResourceScope(s)?.permissions ?? [])].join('');

describe('SMART scopes', () => {
  test('v1 and v2 forms parse to the same permissions', () => {
    assert.equal(perms('patient/Observation.read'), 'rs');
    assert.equal(perms('patient/Observation.rs'), 'rs');
    assert.equal(perms('user/*.write'), 'cud');
    assert.equal(perms('system/*.*'), 'cruds');
    assert.equal(perms('system/*.cruds'), 'cruds');
    assert.equal(perms('user/Patient.c'), 'c');
    assert.deepEqual(parseResourceScope('patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory')?.query,
      [['category', 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory']]);
  });

  test('malformed or non-resource scopes are not resource scopes', () => {
    for (const s of ['openid', 'fhirUser', 'launch/patient', 'patient/Observation.sr', 'patient/Observation.rr', 'patient/Observation.x',
      'admin/Observation.read', 'patient/NotAType.read', 'patient/Observation.read?category=x', 'patient/Observation.rs?', 'patient/Observation.rs?category=',
      'patient/observation.read', 'patient/Observation.']) {
      assert.equal(parseResourceScope(s), undefined, s);
    }
    assert.deepEqual(parseScopes('openid  launch/patient patient/*.rs').other, ['openid', 'launch/patient']);
  });

  test('covers: context, type, permissions and granular queries', () => {
    const c = (a: string, b: string) => covers(parseResourceScope(a)!, parseResourceScope(b)!);
    assert.ok(c('patient/*.cruds', 'patient/Observation.rs'));
    assert.ok(!c('patient/*.cruds', 'user/Observation.rs'));
    assert.ok(!c('patient/Observation.rs', 'patient/Condition.rs'));
    assert.ok(!c('patient/Observation.r', 'patient/Observation.rs'));
    assert.ok(c('patient/Observation.rs', 'patient/Observation.rs?category=lab'));
    assert.ok(!c('patient/Observation.rs?category=lab', 'patient/Observation.rs'));
  });

  test('narrowScopes: the requested scopes that are allowed; a scope asking for more is not granted', () => {
    assert.deepEqual(narrowScopes('patient/Observation.read openid fhirUser', 'patient/*.read openid'), ['patient/Observation.read', 'openid']);
    assert.deepEqual(narrowScopes('patient/*.rs patient/Condition.r', 'patient/Observation.rs patient/Condition.rs'), ['patient/Condition.r']);
    assert.deepEqual(narrowScopes('patient/*.cruds', 'patient/*.rs'), []);
    assert.deepEqual(narrowScopes('system/*.read', 'patient/*.read'), []);
    assert.deepEqual(narrowScopes('patient/Observation.rs', 'patient/Observation.rs?category=lab'), []);
    assert.deepEqual(narrowScopes('patient/Observation.rs?category=lab', 'patient/Observation.rs'), ['patient/Observation.rs?category=lab']);
    assert.deepEqual(narrowScopes('offline_access launch', 'online_access'), []);
  });
});
