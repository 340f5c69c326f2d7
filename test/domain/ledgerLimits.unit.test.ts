import { describe, expect, it } from 'vitest';
import { type AccountVolume, AccountVolumeGuard } from '../../src/commands/accountVolumeGuard.js';
import { DomainError } from '../../src/domain/errors.js';
import { postEntry } from '../../src/domain/journal.js';
import {
  ACCOUNT_VOLUME_LIMIT,
  ACCOUNT_VOLUME_WATCH_FROM,
  MAX_POSTING_AMOUNT,
  STEP_VOLUME_LIMIT,
  volumeLimitFor,
} from '../../src/domain/ledgerLimits.js';
import { type AdjustWallet, type CreditTopUp, walletDecider } from '../../src/domain/wallet.js';
import { FINANCE_ADMIN, uuid } from './fixtures.js';
import { history, spec } from './spec.js';

const S = 's1';
const adjust = (amount: number, n: number): AdjustWallet => ({
  type: 'AdjustWallet',
  studentId: S,
  adjustmentId: `adj${n}`,
  direction: 'credit',
  amount,
  currency: 'usd',
  reason: 'limit test',
  actor: FINANCE_ADMIN,
  entryId: uuid(`adj-${n}`),
});
const topUp = (amount: number, n: number): CreditTopUp => ({
  type: 'CreditTopUp',
  studentId: S,
  topUpId: `tu${n}`,
  paymentIntentId: `pi_tu${n}`,
  amount,
  currency: 'usd',
  entryId: uuid(`topup-${n}`),
});

/** Credits of the maximum posting that fit under the lower limit. */
const FITS = Math.floor(ACCOUNT_VOLUME_LIMIT / MAX_POSTING_AMOUNT);
const nearLimit = () =>
  history(
    walletDecider,
    Array.from({ length: FITS }, (_, i) => adjust(MAX_POSTING_AMOUNT, i)),
  );

describe('ledger limits in the wallet decider (the stream owns the account: checked exactly)', () => {
  it('a posting above the per-posting limit is refused, naming the account and the limit', () => {
    const error = spec(walletDecider)
      .given([])
      .when(adjust(MAX_POSTING_AMOUNT + 1, 1))
      .thenFails('account_limit_exceeded');
    expect(error.details).toMatchObject({ account: 'student:s1:wallet', limit: MAX_POSTING_AMOUNT });
  });

  it('an adjustment that would take the wallet past the account limit is refused; the volume stays below it', () => {
    const error = spec(walletDecider)
      .given(nearLimit())
      .when(adjust(MAX_POSTING_AMOUNT, FITS))
      .thenFails('account_limit_exceeded');
    expect(error.details).toMatchObject({
      account: 'student:s1:wallet',
      currency: 'usd',
      limit: ACCOUNT_VOLUME_LIMIT,
      volume: FITS * MAX_POSTING_AMOUNT,
    });
    // What still fits is accepted.
    spec(walletDecider)
      .given(nearLimit())
      .when(adjust(ACCOUNT_VOLUME_LIMIT - FITS * MAX_POSTING_AMOUNT, FITS))
      .thenEmits((events) => expect(events).toHaveLength(1));
  });

  it('a top-up Stripe already took is credited above the lower limit (a step, not a new movement)', () => {
    expect(volumeLimitFor('CreditTopUp')).toBe(STEP_VOLUME_LIMIT);
    expect(volumeLimitFor('AdjustWallet')).toBe(ACCOUNT_VOLUME_LIMIT);
    spec(walletDecider)
      .given(nearLimit())
      .when(topUp(MAX_POSTING_AMOUNT, 1))
      .thenEmits((events) => expect(events[0]?.type).toBe('WalletToppedUp'));
  });
});

describe('AccountVolumeGuard (accounts many streams post to: checked against the read model)', () => {
  const entry = (account: string, amount: number) =>
    postEntry({
      entryId: uuid(`e-${account}-${amount}`),
      description: 'test',
      currency: 'usd',
      lines: [
        { account, side: 'credit', amount },
        { account: 'platform:adjustments', side: 'debit', amount },
      ],
    });

  function guardOver(volumes: AccountVolume[], clock: { now: number }) {
    const calls = { atLeast: 0, of: 0 };
    const guard = new AccountVolumeGuard({
      refreshMs: 1_000,
      clock: () => clock.now,
      volumes: {
        atLeast: async (n) => {
          calls.atLeast++;
          return volumes.filter((v) => v.volume >= n);
        },
        of: async (tenantId, keys) => {
          calls.of++;
          return volumes.filter(
            (v) =>
              v.tenantId === tenantId &&
              keys.some((k) => k.account === v.account && k.currency === v.currency),
          );
        },
      },
    });
    return { guard, calls };
  }

  it('reads nothing per command for accounts far from the limit, and the watch list at most once per refreshMs', async () => {
    const clock = { now: 0 };
    const { guard, calls } = guardOver([], clock);
    for (let i = 0; i < 10; i++)
      await guard.check('t', [entry('platform:revenue:subscriptions', 100)], ACCOUNT_VOLUME_LIMIT);
    expect(calls).toEqual({ atLeast: 1, of: 0 });
    clock.now = 1_000;
    await guard.check('t', [entry('platform:revenue:subscriptions', 100)], ACCOUNT_VOLUME_LIMIT);
    expect(calls).toEqual({ atLeast: 2, of: 0 });
  });

  it('refuses what would take a watched account past the limit, naming it; the other tenant is not affected', async () => {
    const near = ACCOUNT_VOLUME_LIMIT - 10;
    const clock = { now: 0 };
    const { guard, calls } = guardOver(
      [
        { tenantId: 't', account: 'platform:revenue:subscriptions', currency: 'usd', volume: near },
        // platform:adjustments is far below the limit in this tenant.
        { tenantId: 't', account: 'platform:adjustments', currency: 'usd', volume: 5 },
      ],
      clock,
    );
    const refused = await guard
      .check('t', [entry('platform:revenue:subscriptions', 11)], ACCOUNT_VOLUME_LIMIT)
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DomainError);
    expect((refused as DomainError).code).toBe('account_limit_exceeded');
    expect((refused as DomainError).details).toMatchObject({
      account: 'platform:revenue:subscriptions',
      limit: ACCOUNT_VOLUME_LIMIT,
      volume: near,
      amount: 11,
    });
    await guard.check('t', [entry('platform:revenue:subscriptions', 10)], ACCOUNT_VOLUME_LIMIT);
    // A step may go on up to the higher limit.
    await guard.check('t', [entry('platform:revenue:subscriptions', 11)], STEP_VOLUME_LIMIT);
    await guard.check('other', [entry('platform:revenue:subscriptions', 11)], ACCOUNT_VOLUME_LIMIT);
    expect(calls.of).toBe(3);
    expect(ACCOUNT_VOLUME_WATCH_FROM).toBeLessThan(near);
  });

  it('refuses a posting line above the per-posting limit before reading anything', async () => {
    const clock = { now: 0 };
    const { guard, calls } = guardOver([], clock);
    const refused = await guard
      .check('t', [entry('stripe:balance', MAX_POSTING_AMOUNT + 1)], STEP_VOLUME_LIMIT)
      .catch((e: unknown) => e);
    expect((refused as DomainError).code).toBe('account_limit_exceeded');
    expect(calls).toEqual({ atLeast: 0, of: 0 });
  });
});
