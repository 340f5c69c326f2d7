import { deterministicId } from '../../src/domain/ids.js';
import { bookingPolicyFrom, defaultTenantSettings } from '../../src/domain/tenantSettings.js';

export const TENANT = 't1';
/** A fixed UUID per label, so expected events can be written out. */
export const uuid = (label: string): string => deterministicId('test', label);
export const FINANCE_ADMIN = { id: 'admin-1', role: 'finance_admin' };
export const POLICY = bookingPolicyFrom(defaultTenantSettings());
export const T0 = '2026-03-01T10:00:00.000Z';
export const at = (iso: string, plusHours: number): string =>
  new Date(Date.parse(iso) + plusHours * 3_600_000).toISOString();

/** Values every amount check must reject, with why. */
export const BAD_AMOUNTS: ReadonlyArray<[string, unknown]> = [
  ['zero', 0],
  ['negative', -100],
  ['fractional', 10.5],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['past MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER + 2],
  ['a string', '100'],
];
