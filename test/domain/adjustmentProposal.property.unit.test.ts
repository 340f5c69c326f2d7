import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AdjustmentProposalCommand,
  type AdjustmentProposalEvent,
  adjustmentProposalDecider,
} from '../../src/domain/adjustmentProposal.js';
import { DomainError } from '../../src/domain/errors.js';
import { HOUR_MS } from '../../src/domain/validate.js';
import { spec } from './spec.js';

/**
 * Four eyes as a property: whatever finance admins (and others) send, in any order and at any time, a
 * proposal is approved at most once, never by its proposer, never by anyone but a finance admin, never
 * after it expired, and never both approved and rejected. Checked against a small reference model of
 * the rules, command by command (the same answer, the same outcome).
 */
const ACTORS = [
  { id: 'fin_a', role: 'finance_admin' },
  { id: 'fin_b', role: 'finance_admin' },
  { id: 'fin_c', role: 'finance_admin' },
  { id: 'adm', role: 'tenant_admin' },
] as const;
const START_MS = Date.parse('2030-01-01T00:00:00.000Z');
const EXPIRY_HOURS = 24;

type Step = { kind: 'propose' | 'approve' | 'reject'; actor: number; advanceMinutes: number };

interface Model {
  status: 'none' | 'proposed' | 'approved' | 'rejected';
  proposer: string | null;
  expiresAtMs: number;
}

/** What the rules say one step does: the error code, or the event type it appends. */
function expected(model: Model, step: Step, atMs: number): string {
  const actor = ACTORS[step.actor]!;
  if (step.kind === 'propose') {
    if (actor.role !== 'finance_admin') return 'forbidden';
    return model.status === 'none' ? 'AdjustmentProposed' : 'invalid_state';
  }
  if (actor.role !== 'finance_admin') return 'forbidden';
  if (model.status === 'none') return 'not_found';
  if (model.status !== 'proposed' || atMs >= model.expiresAtMs) return 'invalid_state';
  if (step.kind === 'reject') return 'AdjustmentRejected';
  return actor.id === model.proposer ? 'forbidden' : 'AdjustmentApproved';
}

function command(step: Step, atMs: number): AdjustmentProposalCommand {
  const actor = { ...ACTORS[step.actor]! };
  const at = new Date(atMs).toISOString();
  switch (step.kind) {
    case 'propose':
      return {
        type: 'ProposeAdjustment',
        proposalId: 'p_1',
        account: 'student:s1:wallet',
        direction: 'credit',
        amount: 2_500_000,
        currency: 'usd',
        reason: 'goodwill credit, ticket 7',
        actor,
        proposedAt: at,
        expiryHours: EXPIRY_HOURS,
        threshold: 1_000_000,
        allowedCurrencies: ['usd'],
      };
    case 'approve':
      return { type: 'ApproveAdjustment', actor, approvedAt: at };
    case 'reject':
      return { type: 'RejectAdjustment', actor, reason: 'not justified', rejectedAt: at };
  }
}

const steps = fc.array(
  fc.record({
    kind: fc.constantFrom('propose', 'approve', 'reject'),
    actor: fc.integer({ min: 0, max: ACTORS.length - 1 }),
    // Mostly small steps, sometimes past the expiry.
    advanceMinutes: fc.oneof(fc.integer({ min: 0, max: 90 }), fc.integer({ min: 0, max: 2 * 24 * 60 })),
  }),
  { maxLength: 12 },
);

describe('adjustment proposals (property)', () => {
  it('approve at most once, by another finance admin, before the expiry; never both approved and rejected', () => {
    fc.assert(
      fc.property(steps, (plan) => {
        const history: AdjustmentProposalEvent[] = [];
        const model: Model = { status: 'none', proposer: null, expiresAtMs: 0 };
        let nowMs = START_MS;
        for (const step of plan as Step[]) {
          nowMs += step.advanceMinutes * 60_000;
          const want = expected(model, step, nowMs);
          const when = spec(adjustmentProposalDecider).given(history).when(command(step, nowMs));
          if (want.startsWith('Adjustment')) {
            const [event, ...more] = when.thenEmits((events) =>
              expect(events.map((e) => e.type)).toEqual([want]),
            );
            expect(more).toEqual([]);
            history.push(event!);
            if (event!.type === 'AdjustmentProposed') {
              model.status = 'proposed';
              model.proposer = ACTORS[step.actor]!.id;
              model.expiresAtMs = nowMs + EXPIRY_HOURS * HOUR_MS;
            } else {
              model.status = event!.type === 'AdjustmentApproved' ? 'approved' : 'rejected';
            }
          } else {
            expect(when.thenFails(want as DomainError['code'])).toBeInstanceOf(DomainError);
          }
        }
        const approvals = history.filter((e) => e.type === 'AdjustmentApproved');
        const rejections = history.filter((e) => e.type === 'AdjustmentRejected');
        expect(approvals.length + rejections.length).toBeLessThanOrEqual(1);
        const proposal = history.find((e) => e.type === 'AdjustmentProposed');
        for (const a of approvals) {
          expect(a.data.approvedBy.id).not.toBe(proposal?.data.proposedBy.id);
          expect(a.data.approvedBy.role).toBe('finance_admin');
          expect(Date.parse(a.data.approvedAt)).toBeLessThan(Date.parse(proposal!.data.expiresAt));
          expect(a.data.amount).toBe(proposal!.data.amount);
        }
      }),
      { numRuns: 300 },
    );
  });
});
