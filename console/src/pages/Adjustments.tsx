import { useState } from 'preact/hooks';
import { api, newIdempotencyKey } from '../api';
import {
  AccountLink,
  Async,
  Badge,
  DateTime,
  EntryLink,
  Money,
  PageTitle,
  TableWrap,
} from '../components/ui';
import { problemText, useLoad } from '../hooks';
import { parseMoneyInput } from '../money';
import { href } from '../router';
import type { Principal } from '../session';
import type {
  AdjustmentProposal,
  AdjustmentProposalApproved,
  AdjustmentProposalCreated,
  AdjustmentProposalList,
} from '../types';

/**
 * Four eyes: one finance admin proposes an adjustment, another approves (it is then made) or rejects it.
 * Each action carries its own Idempotency-Key, kept across a retry of the same click.
 */
export function AdjustmentsPage({ principal }: { principal: Principal }) {
  // The ledger position of this tab's last decision: the list is read consistent with it (read models
  // follow the event store; without it a just-made proposal could be missing from the list).
  const [seen, setSeen] = useState<string | null>(null);
  const [notice, setNotice] = useState<{ tone: 'success' | 'error'; text: string; entryId?: string } | null>(
    null,
  );
  const list = useLoad(
    (signal) =>
      api<AdjustmentProposalList>(
        seen === null ? '/v1/adjustment-proposals' : `/v1/adjustment-proposals?consistentWith=${seen}`,
        { signal },
      ),
    [seen],
  );
  const refresh = (position: string) => setSeen(position);
  const canAct = principal.roles.includes('finance_admin');
  return (
    <section>
      <PageTitle sub="Above the tenant's threshold an adjustment takes effect only when a second finance admin approves it.">
        Adjustments
      </PageTitle>
      {notice ? (
        <p class={notice.tone} role={notice.tone === 'error' ? 'alert' : 'status'}>
          {notice.text} {notice.entryId ? <EntryLink entryId={notice.entryId} label="see the entry" /> : null}
        </p>
      ) : null}
      {canAct ? (
        <ProposeForm
          onDone={(text, position) => {
            setNotice({ tone: 'success', text });
            refresh(position);
          }}
          onError={(text) => setNotice({ tone: 'error', text })}
        />
      ) : (
        <p class="notice">Only finance admins propose and approve adjustments; you can read them.</p>
      )}
      <h2>Proposals</h2>
      <Async loaded={list} what="the proposals">
        {(l) => (
          <TableWrap label="Adjustment proposals">
            <table class="stack">
              <caption>Most recent first</caption>
              <thead>
                <tr>
                  <th scope="col">Status</th>
                  <th scope="col">Account</th>
                  <th scope="col" class="num">
                    Amount
                  </th>
                  <th scope="col">Reason</th>
                  <th scope="col">Proposed</th>
                  <th scope="col">Decision</th>
                </tr>
              </thead>
              <tbody>
                {l.items.length === 0 ? (
                  <tr>
                    <td colSpan={6} class="empty">
                      No proposals yet.
                    </td>
                  </tr>
                ) : null}
                {l.items.map((p) => (
                  <ProposalRow
                    key={p.proposalId}
                    proposal={p}
                    principal={principal}
                    canAct={canAct}
                    onDone={(text, position, entryId) => {
                      setNotice({ tone: 'success', text, ...(entryId ? { entryId } : {}) });
                      refresh(position);
                    }}
                    onError={(text) => setNotice({ tone: 'error', text })}
                  />
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Async>
    </section>
  );
}

const TONE: Record<AdjustmentProposal['status'], 'ok' | 'warn' | 'bad' | undefined> = {
  proposed: 'warn',
  approved: 'ok',
  rejected: 'bad',
  expired: undefined,
};

function ProposalRow({
  proposal: p,
  principal,
  canAct,
  onDone,
  onError,
}: {
  proposal: AdjustmentProposal;
  principal: Principal;
  canAct: boolean;
  onDone: (text: string, position: string, entryId?: string) => void;
  onError: (text: string) => void;
}) {
  const [busy, setBusy] = useState(false);
  // One key per proposal and action, so a retried click is the same request.
  const [keys] = useState(() => ({
    approve: newIdempotencyKey('approve'),
    reject: newIdempotencyKey('reject'),
  }));
  const [reason, setReason] = useState('');
  const own = p.proposedBy.id === principal.sub;
  const act = async (what: 'approve' | 'reject') => {
    setBusy(true);
    try {
      if (what === 'approve') {
        const r = await api<AdjustmentProposalApproved>(`/v1/adjustment-proposals/${p.proposalId}/approve`, {
          method: 'POST',
          idempotencyKey: keys.approve,
        });
        onDone(`Approved: ${p.direction} ${p.account} made.`, r.position, r.entryId);
      } else {
        const r = await api<AdjustmentProposalCreated>(`/v1/adjustment-proposals/${p.proposalId}/reject`, {
          method: 'POST',
          body: { reason },
          idempotencyKey: keys.reject,
        });
        onDone('Rejected: nothing was adjusted.', r.position);
      }
    } catch (error) {
      onError(problemText(error as Error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <tr>
      <td data-label="Status">
        <Badge tone={TONE[p.status]}>{p.status}</Badge>
      </td>
      <td data-label="Account">
        <AccountLink account={p.account} currency={p.amount.currency} />{' '}
        <span class="help">{p.direction}</span>
      </td>
      <td class="num" data-label="Amount">
        <Money amount={p.amount.amount} currency={p.amount.currency} />
      </td>
      <td data-label="Reason">{p.reason}</td>
      <td data-label="Proposed">
        <div>
          {p.proposedBy.id} · <DateTime iso={p.proposedAt} />
          <div class="help">
            expires <DateTime iso={p.expiresAt} /> ·{' '}
            <a href={href('story', 'adjustment_proposal', p.proposalId)}>audit trail</a>
          </div>
        </div>
      </td>
      <td data-label="Decision">
        {p.status === 'proposed' && canAct ? (
          own ? (
            <div>
              <span class="help">Another finance admin must approve your proposal.</span>
              <RejectControls
                id={p.proposalId}
                reason={reason}
                setReason={setReason}
                busy={busy}
                onReject={() => act('reject')}
                label="Withdraw"
              />
            </div>
          ) : (
            <div class="decision-actions">
              <button type="button" disabled={busy} onClick={() => act('approve')}>
                Approve
              </button>
              <RejectControls
                id={p.proposalId}
                reason={reason}
                setReason={setReason}
                busy={busy}
                onReject={() => act('reject')}
                label="Reject"
              />
            </div>
          )
        ) : p.approvedBy ? (
          `approved by ${p.approvedBy.id}`
        ) : p.rejectedBy ? (
          `rejected by ${p.rejectedBy.id}`
        ) : (
          '—'
        )}
      </td>
    </tr>
  );
}

function RejectControls(props: {
  id: string;
  reason: string;
  setReason: (r: string) => void;
  busy: boolean;
  onReject: () => void;
  label: string;
}) {
  return (
    <span class="reject">
      <label class="visually-hidden" for={`reason-${props.id}`}>
        Reason to {props.label.toLowerCase()}
      </label>
      <input
        id={`reason-${props.id}`}
        placeholder="reason"
        value={props.reason}
        onInput={(e) => props.setReason((e.target as HTMLInputElement).value)}
      />
      <button
        type="button"
        class="secondary"
        disabled={props.busy || props.reason.trim() === ''}
        onClick={props.onReject}
      >
        {props.label}
      </button>
    </span>
  );
}

function ProposeForm({
  onDone,
  onError,
}: {
  onDone: (text: string, position: string) => void;
  onError: (text: string) => void;
}) {
  const [form, setForm] = useState({
    account: '',
    direction: 'credit',
    amount: '',
    currency: 'usd',
    reason: '',
  });
  const [key, setKey] = useState(() => newIdempotencyKey('propose'));
  const [busy, setBusy] = useState(false);
  const [invalid, setInvalid] = useState<string | null>(null);
  const set = (k: keyof typeof form) => (e: Event) =>
    setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  return (
    <form
      aria-labelledby="propose-title"
      onSubmit={async (e) => {
        e.preventDefault();
        const minor = parseMoneyInput(form.amount, form.currency);
        if (minor === null || minor <= 0) {
          setInvalid('Enter a positive amount in money units, e.g. 120.50.');
          return;
        }
        setInvalid(null);
        setBusy(true);
        try {
          const r = await api<AdjustmentProposalCreated>('/v1/adjustment-proposals', {
            method: 'POST',
            idempotencyKey: key,
            body: {
              account: form.account.trim(),
              direction: form.direction,
              amount: minor,
              currency: form.currency,
              reason: form.reason.trim(),
            },
          });
          setKey(newIdempotencyKey('propose'));
          setForm({ ...form, amount: '', reason: '' });
          onDone('Proposed: it waits for a second finance admin.', r.position);
        } catch (error) {
          onError(problemText(error as Error));
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2 id="propose-title">Propose an adjustment</h2>
      <div class="fields">
        <div class="field">
          <label for="p-account">Account</label>
          <input
            id="p-account"
            required
            value={form.account}
            placeholder="student:s1:wallet"
            onInput={set('account')}
          />
        </div>
        <div class="field">
          <label for="p-direction">Side</label>
          <select id="p-direction" value={form.direction} onChange={set('direction')}>
            <option value="credit">credit</option>
            <option value="debit">debit</option>
          </select>
        </div>
        <div class="field">
          <label for="p-amount">Amount</label>
          <input
            id="p-amount"
            required
            inputMode="decimal"
            value={form.amount}
            placeholder="120.50"
            aria-invalid={invalid ? 'true' : undefined}
            onInput={set('amount')}
          />
        </div>
        <div class="field">
          <label for="p-currency">Currency</label>
          <input
            id="p-currency"
            required
            size={5}
            maxLength={3}
            value={form.currency}
            onInput={set('currency')}
          />
        </div>
        <div class="field grow">
          <label for="p-reason">Reason (kept in the audit trail)</label>
          <input id="p-reason" required value={form.reason} onInput={set('reason')} />
        </div>
        <button type="submit" disabled={busy}>
          {busy ? 'Proposing…' : 'Propose'}
        </button>
      </div>
      {invalid ? (
        <p class="error" role="alert">
          {invalid}
        </p>
      ) : null}
    </form>
  );
}
