import { invariant } from './errors.js';
import { validationFailed } from './validate.js';

/**
 * Calendar periods in a tenant's time zone (IANA names, resolved by the runtime's ICU data), for
 * spending limits per day, week and month (spendingLimits.ts). Pure: the same instant and zone give the
 * same keys. The keys a hold was counted under are stored in its event, so a later change of the ICU
 * data or of the tenant's zone never changes what an existing event means.
 *
 * Keys sort in time order as strings: day `2026-12-04`, ISO week `2026-W49` (weeks start on Monday, the
 * week belongs to the year of its Thursday), month `2026-12`.
 */
export interface CalendarPeriods {
  day: string;
  week: string;
  month: string;
}

export const PERIOD_KINDS = ['day', 'week', 'month'] as const;
export type PeriodKind = (typeof PERIOD_KINDS)[number];

export const DAY_KEY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
export const WEEK_KEY_PATTERN = /^\d{4}-W\d{2}$/;
export const MONTH_KEY_PATTERN = /^\d{4}-\d{2}$/;

/** `Area/Location` names and `UTC`; offsets (`+01:00`) and abbreviations (`CET`) are not calendars. */
const ZONE_NAME = /^(?:UTC|[A-Z][A-Za-z_]+(?:\/[A-Za-z0-9_+-]+){1,2})$/;
const MAX_ZONE_CHARS = 64;

/** The formatters are costly to build and immutable: one per zone, bounded. */
const FORMATTERS = new Map<string, Intl.DateTimeFormat>();
const MAX_FORMATTERS = 1_000;

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = FORMATTERS.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      calendar: 'iso8601',
      numberingSystem: 'latn',
    });
    if (FORMATTERS.size >= MAX_FORMATTERS) FORMATTERS.delete(FORMATTERS.keys().next().value as string);
    FORMATTERS.set(timeZone, f);
  }
  return f;
}

/**
 * The zone's name as given when the runtime knows it as an IANA zone, else null. Kept as given, not
 * canonicalised: ICU's canonical names are the old ones (Asia/Kolkata reads back as Asia/Calcutta).
 */
export function knownTimeZone(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > MAX_ZONE_CHARS || !ZONE_NAME.test(value)) return null;
  try {
    new Intl.DateTimeFormat('en', { timeZone: value });
    return value;
  } catch {
    return null;
  }
}

/** A time zone setting from a command or a stored event: an IANA name the runtime knows. */
export function requireTimeZone(value: unknown, field: string): string {
  const zone = knownTimeZone(value);
  if (zone === null) {
    validationFailed(`${field} must be an IANA time zone name, e.g. Europe/Berlin or UTC`, { field });
  }
  return zone;
}

/** The local calendar date of an instant in a zone. */
export function localDate(epochMs: number, timeZone: string): { year: number; month: number; day: number } {
  const parts = formatter(timeZone).formatToParts(new Date(epochMs));
  const get = (type: 'year' | 'month' | 'day'): number => {
    const part = parts.find((p) => p.type === type);
    invariant(part, `no ${type} formatting ${epochMs} in ${timeZone}`);
    return Number(part.value);
  };
  const date = { year: get('year'), month: get('month'), day: get('day') };
  invariant(
    Number.isInteger(date.year) && Number.isInteger(date.month) && Number.isInteger(date.day),
    `unreadable local date of ${epochMs} in ${timeZone}`,
  );
  return date;
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** ISO 8601 week of a calendar date: the week's year is that of its Thursday. */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = new Date(Date.UTC(year, month - 1, day));
  date.setUTCFullYear(year); // Date.UTC reads years 0-99 as 1900-1999
  const weekday = (date.getUTCDay() + 6) % 7; // Monday 0 .. Sunday 6
  const thursday = new Date(date.getTime() + (3 - weekday) * 86_400_000);
  const weekYear = thursday.getUTCFullYear();
  const january4 = new Date(Date.UTC(weekYear, 0, 4));
  january4.setUTCFullYear(weekYear);
  const firstThursday = january4.getTime() + (3 - ((january4.getUTCDay() + 6) % 7)) * 86_400_000;
  const week = 1 + Math.round((thursday.getTime() - firstThursday) / (7 * 86_400_000));
  return { year: weekYear, week };
}

/** The day, ISO week and month an instant falls in, in the zone. */
export function calendarPeriods(epochMs: number, timeZone: string): CalendarPeriods {
  const { year, month, day } = localDate(epochMs, timeZone);
  const week = isoWeek(year, month, day);
  return {
    day: `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`,
    week: `${pad(week.year, 4)}-W${pad(week.week, 2)}`,
    month: `${pad(year, 4)}-${pad(month, 2)}`,
  };
}

const CLOCK_FORMATTERS = new Map<string, Intl.DateTimeFormat>();

/** The zone's offset from UTC at an instant, ms (local wall clock - UTC), to the second. */
function zoneOffsetMs(epochMs: number, timeZone: string): number {
  let f = CLOCK_FORMATTERS.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      calendar: 'iso8601',
      numberingSystem: 'latn',
    });
    if (CLOCK_FORMATTERS.size >= MAX_FORMATTERS) {
      CLOCK_FORMATTERS.delete(CLOCK_FORMATTERS.keys().next().value as string);
    }
    CLOCK_FORMATTERS.set(timeZone, f);
  }
  const parts: Record<string, number> = {};
  for (const p of f.formatToParts(new Date(epochMs))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const local = Date.UTC(
    parts.year ?? Number.NaN,
    (parts.month ?? Number.NaN) - 1,
    parts.day,
    parts.hour,
    parts.minute,
    parts.second,
  );
  invariant(Number.isFinite(local), `unreadable local time of ${epochMs} in ${timeZone}`);
  return local - Math.floor(epochMs / 1000) * 1000;
}

/**
 * The instants a month (`yyyy-mm`) starts and ends at in a zone: `[start, end)`, local midnights of its
 * first day and of the next month's first day (two passes: the offset at the guess, then at the result,
 * which settles a DST change between them).
 */
export function monthBoundsMs(monthKey: string, timeZone: string): { startMs: number; endMs: number } {
  invariant(MONTH_KEY_PATTERN.test(monthKey), `not a month key: ${monthKey}`);
  const [year, month] = monthKey.split('-').map(Number) as [number, number];
  const midnight = (y: number, m: number): number => {
    const wall = Date.UTC(y, m - 1, 1);
    const first = wall - zoneOffsetMs(wall, timeZone);
    return wall - zoneOffsetMs(first, timeZone);
  };
  return {
    startMs: midnight(year, month),
    endMs: month === 12 ? midnight(year + 1, 1) : midnight(year, month + 1),
  };
}
