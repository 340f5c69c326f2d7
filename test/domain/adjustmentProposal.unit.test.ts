import { describe, expect, it } from 'vitest';
import {
  type AdjustmentProposalEvent,
  adjustmentProposalDecider,
  decideAdjustmentProposal,
  proposalStatusAt,
} from '../../src/domain/adjustmentProposal.js';
import { DomainError } from '../../src/domain/errors.js';

const A = { id: 'fin_a', role: 'finance_admin' };
const B = { id: 'fin_b', role: 'finance_admin' };
const propose = {
  type: 'ProposeAdjustment' as const,
  proposalId: 'p_1',
  account: 'student:s1:wallet',
  direction: 'credit' as const,
  amount: 5_000_000,
  currency: 'usd',
  reason: 'chargeback won, ticket 12',
  actor: A,
  proposedAt: '2030-01-01T00:00:00.000Z',
  expiryHours: 72,
  threshold: 1_000_000,
  allowedCurrencies: ['usd'],
};

function given(events: AdjustmentProposalEvent[]) {
  return events.reduce(adjustmentProposalDecider.evolve, adjustmentProposalDecider.initialState());
}
function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof DomainError) return error.code;
    throw error;
  }
  return 'no error';
}

describe('adjustment proposals (four eyes)', () => {
  const proposed = decideAdjustmentProposal(propose, given([]));

  it('a proposal records who proposed it, under which threshold, and when it expires', () => {
    expect(proposed).toEqual([
      {
        type: 'AdjustmentProposed',
        data: expect.objectContaining({
          proposalId: 'p_1',
          proposedBy: A,
          expiresAt: '2030-01-04T00:00:00.000Z',
          threshold: 1_000_000,
        }),
      },
    ]);
  });

  it('another finance admin approves it; the proposer cannot; nor can anyone but a finance admin', () => {
    const state = given(proposed);
    const approve = (actor: { id: string; role: string }) =>
      decideAdjustmentProposal(
        { type: 'ApproveAdjustment', actor, approvedAt: '2030-01-02T00:00:00.000Z' },
        state,
      );
    expect(code(() => approve(A))).toBe('forbidden');
    expect(code(() => approve({ id: 'adm', role: 'tenant_admin' }))).toBe('forbidden');
    const approved = approve(B);
    expect(approved).toEqual([
      {
        type: 'AdjustmentApproved',
        data: expect.objectContaining({ approvedBy: B, proposedBy: A, amount: 5_000_000 }),
      },
    ]);
    const after = given([...proposed, ...approved]);
    expect(after.status).toBe('approved');
    // Decided once: a second approval or a rejection afterwards is refused.
    expect(
      code(() =>
        decideAdjustmentProposal(
          { type: 'ApproveAdjustment', actor: B, approvedAt: '2030-01-02T00:00:01.000Z' },
          after,
        ),
      ),
    ).toBe('invalid_state');
    expect(
      code(() =>
        decideAdjustmentProposal(
          { type: 'RejectAdjustment', actor: A, reason: 'x', rejectedAt: '2030-01-02T00:00:01.000Z' },
          after,
        ),
      ),
    ).toBe('invalid_state');
  });

  it('expires: after expiresAt it can be neither approved nor rejected', () => {
    const state = given(proposed);
    expect(proposalStatusAt(state, Date.parse('2030-01-03T23:59:59.999Z'))).toBe('proposed');
    expect(proposalStatusAt(state, Date.parse('2030-01-04T00:00:00.000Z'))).toBe('expired');
    expect(
      code(() =>
        decideAdjustmentProposal(
          { type: 'ApproveAdjustment', actor: B, approvedAt: '2030-01-04T00:00:00.000Z' },
          state,
        ),
      ),
    ).toBe('invalid_state');
  });

  it('the proposer may reject (withdraw) it with a reason', () => {
    const rejected = decideAdjustmentProposal(
      {
        type: 'RejectAdjustment',
        actor: A,
        reason: 'typo in amount',
        rejectedAt: '2030-01-01T01:00:00.000Z',
      },
      given(proposed),
    );
    expect(given([...proposed, ...rejected]).status).toBe('rejected');
  });

  it('refuses what the adjustment could never do, and unknown proposals', () => {
    expect(
      code(() => decideAdjustmentProposal({ ...propose, account: 'platform:adjustments' }, given([]))),
    ).toBe('validation_failed');
    expect(code(() => decideAdjustmentProposal({ ...propose, currency: 'eur' }, given([])))).toBe(
      'validation_failed',
    );
    expect(code(() => decideAdjustmentProposal(propose, given(proposed)))).toBe('invalid_state');
    expect(
      code(() =>
        decideAdjustmentProposal(
          { type: 'ApproveAdjustment', actor: B, approvedAt: '2030-01-02T00:00:00.000Z' },
          given([]),
        ),
      ),
    ).toBe('not_found');
  });
});
