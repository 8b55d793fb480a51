import type { HistoryQuery } from '../store.ts';
import { parseDateRange } from '../../fhir/datetime.ts';

/**
 * The FROM and WHERE of a history query, the same for both stores (their version tables have the
 * same columns). `_at` selects the versions current at some point within the period the value
 * denotes: created before its end and not yet replaced at its start.
 */
export function historyFrom(query: HistoryQuery): { from: string; args: (string | number)[] } {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (query.resourceType) {
    where.push('v.type = ?');
    args.push(query.resourceType);
  }
  if (query.id !== undefined) {
    where.push('r.id = ?');
    args.push(query.id);
  }
  if (query.since) {
    where.push('v.last_updated >= ?');
    args.push(query.since);
  }
  if (query.until) {
    where.push('v.last_updated <= ?');
    args.push(query.until);
  }
  if (query.at) {
    const range = parseDateRange(query.at);
    if (range) {
      where.push('v.last_updated < ?');
      args.push(new Date(range.end).toISOString());
      where.push(`coalesce((SELECT n.last_updated FROM resource_versions n WHERE n.rid = v.rid AND n.version = v.version + 1), '9999') > ?`);
      args.push(new Date(range.start).toISOString());
    }
  }
  return { from: `FROM resource_versions v JOIN resources r ON r.rid = v.rid ${where.length ? 'WHERE ' + where.join(' AND ') : ''}`, args };
}
