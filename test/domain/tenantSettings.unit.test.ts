import { describe, expect, it } from 'vitest';
import { decodeEvent, decodeEventOf, MalformedEventError } from '../../src/domain/events.js';
import {
  DEFAULT_TENANT_SETTINGS,
  defaultTenantSettings,
  tenantSettingsDecider,
  type UpdateTenantSettings,
  validateTenantSettings,
} from '../../src/domain/tenantSettings.js';
import { foldEvents, history, spec } from './spec.js';

const NOW = '2026-04-01T10:00:00.000Z';
const update = (patch: Record<string, unknown>): UpdateTenantSettings => ({
  type: 'UpdateTenantSettings',
  patch,
  updatedAt: NOW,
});

describe('tenant settings', () => {
  it('defaults to the documented policy', () => {
    expect(defaultTenantSettings()).toEqual({
      commissionRateBps: 2000,
      earningsHoldPeriodDays: 7,
      cancellationFreeWindowHours: 24,
      cancellationFeeBps: 5000,
      holdExpiryDays: 7,
      topUpMin: 500,
      topUpMax: 1_000_000,
      payoutMin: 1000,
      allowedCurrencies: ['usd', 'eur', 'gbp'],
      adjustmentApprovalThreshold: 1_000_000,
      adjustmentProposalExpiryHours: 72,
      payoutOnboardingReturnUrl: null,
      payoutOnboardingRefreshUrl: null,
      timeZone: 'UTC',
      reconciliationDailyHourUtc: null,
      referralRefereeCredit: 0,
      referralReferrerCredit: 0,
      referralMonthlyCap: 10,
      referralClawbackDays: 30,
    });
    expect(tenantSettingsDecider.initialState()).toEqual({ settings: defaultTenantSettings(), version: 0 });
    expect(Object.isFrozen(DEFAULT_TENANT_SETTINGS)).toBe(true);
  });

  it('referral programme: off by default, and settings stored before it read as the defaults', () => {
    const {
      referralRefereeCredit,
      referralReferrerCredit,
      referralMonthlyCap,
      referralClawbackDays,
      ...old
    } = defaultTenantSettings();
    expect([referralRefereeCredit, referralReferrerCredit]).toEqual([0, 0]);
    expect(validateTenantSettings(old)).toEqual(defaultTenantSettings());
    expect(validateTenantSettings({ ...old, referralMonthlyCap: 3 }).referralMonthlyCap).toBe(3);
    for (const bad of [-1, 1.5, 1_001, '2']) {
      expect(() => validateTenantSettings({ ...old, referralMonthlyCap: bad })).toThrow(/referralMonthlyCap/);
    }
    expect(() => validateTenantSettings({ ...old, referralRefereeCredit: 1_000_000_001 })).toThrow(
      /referralRefereeCredit/,
    );
  });

  it('time zone: an IANA name the runtime knows, kept as given; settings stored before it read as UTC', () => {
    const { timeZone, ...old } = defaultTenantSettings();
    expect(timeZone).toBe('UTC');
    expect(validateTenantSettings(old).timeZone).toBe('UTC');
    expect(validateTenantSettings({ ...old, timeZone: 'Europe/Berlin' }).timeZone).toBe('Europe/Berlin');
    expect(validateTenantSettings({ ...old, timeZone: 'America/Argentina/Buenos_Aires' }).timeZone).toBe(
      'America/Argentina/Buenos_Aires',
    );
    for (const bad of [
      'Mars/Olympus_Mons',
      '+01:00',
      'CET',
      'utc',
      '',
      'Europe/Berlin\n',
      42,
      'a'.repeat(65),
    ]) {
      expect(() => validateTenantSettings({ ...old, timeZone: bad }), String(bad)).toThrow(
        /settings\.timeZone/,
      );
    }
  });

  it('the daily reconciliation hour: 0-23 UTC or null, and settings stored before it read as null', () => {
    const { reconciliationDailyHourUtc, ...old } = defaultTenantSettings();
    expect(reconciliationDailyHourUtc).toBeNull();
    expect(validateTenantSettings(old)).toEqual(defaultTenantSettings());
    expect(validateTenantSettings({ ...old, reconciliationDailyHourUtc: 0 }).reconciliationDailyHourUtc).toBe(
      0,
    );
    for (const bad of [24, -1, 1.5, '6']) {
      expect(() => validateTenantSettings({ ...old, reconciliationDailyHourUtc: bad })).toThrow(
        /reconciliationDailyHourUtc/,
      );
    }
  });

  it('onboarding URLs: absolute http(s) or null, and settings stored before them read as null', () => {
    const { payoutOnboardingReturnUrl, payoutOnboardingRefreshUrl, ...old } = defaultTenantSettings();
    expect([payoutOnboardingReturnUrl, payoutOnboardingRefreshUrl]).toEqual([null, null]);
    expect(validateTenantSettings(old)).toEqual(defaultTenantSettings());
    const set = validateTenantSettings({
      ...old,
      payoutOnboardingReturnUrl: 'https://tutors.example/payouts/done',
      payoutOnboardingRefreshUrl: 'http://localhost:3000/again',
    });
    expect(set.payoutOnboardingReturnUrl).toBe('https://tutors.example/payouts/done');
    for (const bad of [
      '/relative',
      'javascript:alert(1)',
      'ftp://x.example/',
      '',
      42,
      `https://x.example/${'a'.repeat(2048)}`,
    ]) {
      expect(() => validateTenantSettings({ ...old, payoutOnboardingReturnUrl: bad })).toThrow(
        /payoutOnboardingReturnUrl/,
      );
    }
  });

  it('settings stored before the four-eyes settings existed decode and read with their defaults', () => {
    const { adjustmentApprovalThreshold, adjustmentProposalExpiryHours, ...old } = defaultTenantSettings();
    expect([adjustmentApprovalThreshold, adjustmentProposalExpiryHours]).toEqual([1_000_000, 72]);
    const stored = {
      id: '0b1c2d3e-4f5a-5b6c-8d7e-9f0a1b2c3d4e',
      type: 'TenantSettingsUpdated',
      streamName: 'tenant-t1.settings',
      position: 3n,
      data: { settings: { ...old, commissionRateBps: 1500 }, changed: ['commissionRateBps'], updatedAt: NOW },
      metadata: {
        tenantId: 't1',
        correlationId: 'corr-1',
        causationId: 'cause-1',
        actor: { id: 'admin', role: 'tenant_admin' },
        idempotencyKey: 'key-1',
        occurredAt: NOW,
        schemaVersion: 1,
      },
    };
    const event = decodeEventOf(stored, ['TenantSettingsUpdated']);
    const state = tenantSettingsDecider.evolve(tenantSettingsDecider.initialState(), event);
    expect(state.settings).toEqual({ ...defaultTenantSettings(), commissionRateBps: 1500 });
    // Any other field missing is still a malformed event.
    const { payoutMin: _, ...missingOld } = old;
    expect(() => decodeEvent({ ...stored, data: { ...stored.data, settings: missingOld } })).toThrow(
      MalformedEventError,
    );
  });

  it('appends the full settings after a change, listing what changed', () => {
    spec(tenantSettingsDecider)
      .given([])
      .when(update({ commissionRateBps: 1500, allowedCurrencies: ['usd', 'jpy'] }))
      .thenEmits([
        {
          type: 'TenantSettingsUpdated',
          data: {
            settings: {
              ...defaultTenantSettings(),
              commissionRateBps: 1500,
              allowedCurrencies: ['usd', 'jpy'],
            },
            changed: ['commissionRateBps', 'allowedCurrencies'],
            updatedAt: NOW,
          },
        },
      ]);
  });

  it('appends nothing when nothing changes', () => {
    spec(tenantSettingsDecider)
      .given([])
      .when(update({ commissionRateBps: 2000 }))
      .thenEmits([]);
    spec(tenantSettingsDecider).given([]).when(update({})).thenEmits([]);
  });

  it('folds to the last settings', () => {
    const events = history(tenantSettingsDecider, [
      update({ payoutMin: 2000 }),
      update({ holdExpiryDays: 3 }),
    ]);
    expect(foldEvents(tenantSettingsDecider, events)).toMatchObject({
      version: 2,
      settings: { payoutMin: 2000, holdExpiryDays: 3 },
    });
  });

  it.each<[string, Record<string, unknown>]>([
    ['commission of 100%', { commissionRateBps: 10_000 }],
    ['negative commission', { commissionRateBps: -1 }],
    ['fractional commission', { commissionRateBps: 12.5 }],
    ['fee above 100%', { cancellationFeeBps: 10_001 }],
    ['negative hold period', { earningsHoldPeriodDays: -1 }],
    ['hold period past a year', { earningsHoldPeriodDays: 366 }],
    ['zero hold expiry', { holdExpiryDays: 0 }],
    ['free window as a string', { cancellationFreeWindowHours: '24' }],
    ['zero top-up minimum', { topUpMin: 0 }],
    ['max below min', { topUpMin: 5000, topUpMax: 4999 }],
    ['unsafe top-up max', { topUpMax: 2 ** 60 }],
    ['zero payout minimum', { payoutMin: 0 }],
    ['no currencies', { allowedCurrencies: [] }],
    ['an unknown currency', { allowedCurrencies: ['usd', 'abc'] }],
    ['an uppercase currency', { allowedCurrencies: ['USD'] }],
    ['duplicate currencies', { allowedCurrencies: ['usd', 'usd'] }],
    ['an unknown setting', { vatRateBps: 2000 }],
  ])('rejects %s', (_why, patch) => {
    spec(tenantSettingsDecider).given([]).when(update(patch)).thenFails('validation_failed');
  });

  it('rejects a bad timestamp and a non-object patch', () => {
    spec(tenantSettingsDecider)
      .given([])
      .when({ type: 'UpdateTenantSettings', patch: { payoutMin: 5 }, updatedAt: 'now' })
      .thenFails('validation_failed');
    spec(tenantSettingsDecider)
      .given([])
      .when({ type: 'UpdateTenantSettings', patch: [] as never, updatedAt: NOW })
      .thenFails('validation_failed');
  });

  it('validates complete settings objects', () => {
    expect(validateTenantSettings(defaultTenantSettings())).toEqual(defaultTenantSettings());
    const { payoutMin: _omitted, ...missing } = defaultTenantSettings();
    expect(() => validateTenantSettings(missing)).toThrow(/payoutMin/);
  });
});
