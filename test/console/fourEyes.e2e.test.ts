import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carryOutApprovedProposal } from '../../src/commands/adjustmentProposals.js';
import { decodeEventOf } from '../../src/domain/events.js';
import { token } from '../api/support/harness.js';
import { client, type RealStack, startRealStack } from '../api/support/realStack.js';
import { type Seeded, seedFlows } from './support/seed.js';

/**
 * Four-eyes adjustments over HTTP on the real stack: above the tenant's threshold only an approved
 * proposal adjusts; the proposer cannot approve; every step is in the audit trail and the story.
 */
const T = 'eyes';

describe('four-eyes adjustments', () => {
  let stack: RealStack;
  let seed: Seeded;
  let call: ReturnType<typeof client>;
  let finB: string;
  beforeAll(async () => {
    stack = await startRealStack();
    call = client(stack.baseUrl);
    seed = await seedFlows(stack, T);
    finB = await token(T, 'fin_b', 'finance_admin');
    const admin = await token(T, 'adm_1', 'tenant_admin');
    const settings = await call('PUT', '/v1/tenant/settings', {
      token: admin,
      body: { adjustmentApprovalThreshold: 5_000 },
    });
    expect(settings.status, JSON.stringify(settings.body)).toBe(200);
  }, 180_000);
  afterAll(() => stack?.close());

  const wallet = () => `student:${seed.studentId}:wallet`;
  const available = async () => {
    const head = await stack.store.headPosition();
    const res = await call('GET', `/v1/accounts/${wallet()}/balance?consistentWith=${head}`, {
      token: seed.finance,
    });
    return Number(res.body.available);
  };

  it('above the threshold a direct adjustment is refused; a proposal approved by another admin makes it once', async () => {
    const before = await available();
    const body = {
      account: wallet(),
      direction: 'credit',
      amount: 6_000,
      currency: 'usd',
      reason: 'chargeback reversed',
    };
    const direct = await call('POST', '/v1/adjustments', { token: seed.finance, key: 'direct-big', body });
    expect(direct.status).toBe(422);
    expect(direct.body).toMatchObject({ code: 'limit_exceeded' });
    expect(String(direct.body.detail)).toContain('adjustment-proposals');

    const proposed = await call('POST', '/v1/adjustment-proposals', {
      token: seed.finance,
      key: 'p-1',
      body,
    });
    expect(proposed.status, JSON.stringify(proposed.body)).toBe(201);
    const proposal = proposed.body.proposal as {
      proposalId: string;
      status: string;
      proposedBy: { id: string };
    };
    expect(proposal).toMatchObject({ status: 'proposed', proposedBy: { id: 'fin_1' } });
    expect(await available()).toBe(before);

    const self = await call('POST', `/v1/adjustment-proposals/${proposal.proposalId}/approve`, {
      token: seed.finance,
      key: 'a-self',
    });
    expect(self.status).toBe(403);
    expect(self.body).toMatchObject({ code: 'forbidden' });
    const tenantAdmin = await token(T, 'adm_1', 'tenant_admin');
    const byAdmin = await call('POST', `/v1/adjustment-proposals/${proposal.proposalId}/approve`, {
      token: tenantAdmin,
      key: 'a-adm',
    });
    expect(byAdmin.status).toBe(403);

    const approved = await call('POST', `/v1/adjustment-proposals/${proposal.proposalId}/approve`, {
      token: finB,
      key: 'a-1',
    });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.proposal).toMatchObject({ status: 'approved', approvedBy: { id: 'fin_b' } });
    expect(await available()).toBe(before + 6_000);

    // Retried: the same answer, nothing twice. Approved again with another key: refused.
    const again = await call('POST', `/v1/adjustment-proposals/${proposal.proposalId}/approve`, {
      token: finB,
      key: 'a-1',
    });
    expect(again.body.entryId).toBe(approved.body.entryId);
    const other = await call('POST', `/v1/adjustment-proposals/${proposal.proposalId}/approve`, {
      token: finB,
      key: 'a-2',
    });
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({ code: 'invalid_state' });
    // The process manager's step after a crash finds the adjustment made: it appends nothing.
    const events = await stack.events();
    const approval = events.find((e) => e.type === 'AdjustmentApproved')!;
    const count = events.length;
    const replayed = await carryOutApprovedProposal(
      stack.service,
      decodeEventOf(approval, ['AdjustmentApproved']),
    );
    expect(replayed.entryId).toBe(approved.body.entryId);
    expect((await stack.events()).length).toBe(count);
    expect(await available()).toBe(before + 6_000);

    // The audit trail: the proposal's story holds the proposal, the approval and the adjustment it caused.
    const head = await stack.store.headPosition();
    const story = await call(
      'GET',
      `/v1/stories/adjustment_proposal/${proposal.proposalId}?consistentWith=${head}`,
      {
        token: seed.finance,
      },
    );
    expect(story.status, JSON.stringify(story.body)).toBe(200);
    const steps = (story.body.events as Array<{ event: { eventType: string; actor: { id: string } } }>).map(
      (e) => `${e.event.eventType}:${e.event.actor.id}`,
    );
    expect(steps).toEqual(['AdjustmentProposed:fin_1', 'AdjustmentApproved:fin_b', 'WalletAdjusted:fin_b']);
    expect(story.body.state).toMatchObject({ status: 'approved', view: { approvedBy: { id: 'fin_b' } } });
    const causes = await call('GET', `/v1/entries/${approved.body.entryId}/causes`, { token: seed.finance });
    expect((causes.body.chain as Array<{ eventType: string }>).map((c) => c.eventType)).toEqual([
      'WalletAdjusted',
      'AdjustmentApproved',
    ]);
  });

  it('a rejected proposal adjusts nothing; proposals are listed with their status', async () => {
    const before = await available();
    const proposed = await call('POST', '/v1/adjustment-proposals', {
      token: seed.finance,
      key: 'p-2',
      body: {
        account: wallet(),
        direction: 'debit',
        amount: 7_000,
        currency: 'usd',
        reason: 'duplicate credit',
      },
    });
    expect(proposed.status).toBe(201);
    const id = (proposed.body.proposal as { proposalId: string }).proposalId;
    const rejected = await call('POST', `/v1/adjustment-proposals/${id}/reject`, {
      token: finB,
      key: 'r-1',
      body: { reason: 'not a duplicate, see ticket 88' },
    });
    expect(rejected.status, JSON.stringify(rejected.body)).toBe(200);
    expect(rejected.body.proposal).toMatchObject({ status: 'rejected', rejectedBy: { id: 'fin_b' } });
    const approveLate = await call('POST', `/v1/adjustment-proposals/${id}/approve`, {
      token: finB,
      key: 'a-3',
    });
    expect(approveLate.status).toBe(422);
    expect(await available()).toBe(before);
    const head = await stack.store.headPosition();
    const list = await call('GET', `/v1/adjustment-proposals?consistentWith=${head}`, {
      token: seed.finance,
    });
    expect((list.body.items as Array<{ status: string }>).map((p) => p.status)).toEqual([
      'rejected',
      'approved',
    ]);
    const pending = await call('GET', '/v1/adjustment-proposals?status=proposed', { token: seed.finance });
    expect(pending.body.items).toEqual([]);
    const missing = await call('POST', '/v1/adjustment-proposals/nope/approve', { token: finB, key: 'a-4' });
    expect(missing.status).toBe(404);
  });
});
