/**
 * FHIR date, dateTime and instant values as the time range they denote: `2020` is the whole year,
 * `2020-03-04T10:00:00Z` one second. Values without a zone are read as UTC, the server's zone.
 * End is exclusive.
 */
export interface DateRange {
  start: number;
  end: number;
}

const pattern =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export function parseDateRange(value: string): DateRange | undefined {
  const m = pattern.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = mo === undefined ? 1 : Number(mo);
  const day = d === undefined ? 1 : Number(d);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (h !== undefined && (Number(h) > 23 || Number(mi) > 59 || (s !== undefined && Number(s) > 59))) return undefined;
  const offset = zoneOffsetMs(zone);
  if (offset === undefined) return undefined;
  const ms = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, '0'));
  const start = Date.UTC(year, month - 1, day, h === undefined ? 0 : Number(h), mi === undefined ? 0 : Number(mi), s === undefined ? 0 : Number(s), ms) - offset;
  let end: number;
  if (mo === undefined) end = Date.UTC(year + 1, 0, 1);
  else if (d === undefined) end = Date.UTC(year, month, 1);
  else if (h === undefined) end = Date.UTC(year, month - 1, day + 1);
  else if (s === undefined) end = start + 60_000;
  else if (frac === undefined) end = start + 1000;
  else end = start + 1;
  // Year, month and day ranges are calendar units in UTC; only times carry their own zone.
  if (h === undefined) return { start: start + offset, end };
  return { start, end };
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function zoneOffsetMs(zone: string | undefined): number | undefined {
  if (zone === undefined || zone === 'Z') return 0;
  const sign = zone[0] === '-' ? -1 : 1;
  const hours = Number(zone.slice(1, 3));
  const minutes = Number(zone.slice(4, 6));
  if (hours > 14 || minutes > 59) return undefined;
  return sign * (hours * 60 + minutes) * 60_000;
}

/** An instant as the store writes it: UTC, millisecond precision, so text order is time order. */
export function toStoredInstant(ms: number): string {
  return new Date(ms).toISOString();
}
