import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backlog } from '../../src/audit/sinks/backlog.ts';

/** A sink's backlog is bounded by count and by total size: large events cannot grow memory without end. */
test('a backlog drops its oldest items beyond its count or its size, and counts them', () => {
  const byCount = new Backlog<string>(3, 1000);
  for (const s of ['a', 'b', 'c', 'd']) byCount.push(s);
  assert.deepEqual(byCount.take(1000), ['b', 'c', 'd']);
  assert.equal(byCount.takeDropped(), 1);

  const bySize = new Backlog<string>(100, 10);
  bySize.push('xxxx');
  bySize.push('yyyy');
  bySize.push('zzzzzzz');
  assert.equal(bySize.takeDropped(), 2, 'the two oldest make room for the newest');
  assert.deepEqual(bySize.take(100), ['zzzzzzz']);
  // An item larger than the whole budget is still kept alone: the newest event is never refused.
  bySize.push('0123456789abc');
  assert.deepEqual(bySize.take(100), ['0123456789abc']);
  bySize.push('ab');
  bySize.push('cd');
  assert.equal(bySize.length, 2, 'taking freed the size it held');
});
