import { get, type Balance, type DepositInfo, type Transaction } from '../api';
import type { Page } from '../main';
import { badge, clear, copyButton, h, showError, spinner, table, usdc, when } from '../ui';

const kKinds: Record<string, string> = {
  deposit: 'Deposit',
  charge: 'VM hour',
  payout_reserve: 'Payout (reserved)',
  payout_settle: 'Payout (sent)',
  payout_cancel: 'Payout (cancelled)',
};

export const billingPage: Page = (main) => {
  const errors = h('div', {});
  const summary = h('div', {}, spinner('Loading your balance…'));
  const deposit = h('div', {});
  const txBox = h('div', { 'data-testid': 'transactions' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Older transactions');
  let cursor: string | null = null;
  let txs: Transaction[] = [];
  main.append(h('h1', {}, 'Billing'), errors, summary, deposit,
              h('section', { class: 'card' }, h('h2', {}, 'Transactions'), txBox, more));

  function drawTransactions(): void {
    clear(txBox);
    if (!txs.length) {
      txBox.append(h('p', { class: 'muted' }, 'No transactions yet. Deposits appear here once confirmed on chain.'));
      return;
    }
    txBox.append(table(['When', 'What', 'Balance change', 'Details'], txs.map((t) => [
      when(t.createdAt),
      kKinds[t.kind] ?? t.kind,
      h('span', { class: t.balanceChange.startsWith('-') ? 'neg' : 'pos' }, `${usdc(t.balanceChange)} ${t.currency}`),
      h('span', { class: 'small muted' }, Object.entries(t.details ?? {}).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' · ')),
    ])));
  }

  async function loadTransactions(): Promise<void> {
    try {
      const r = await get<{ transactions: Transaction[]; nextCursor: string | null }>(
        `/api/billing/transactions?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      txs = txs.concat(r.transactions);
      cursor = r.nextCursor;
      more.hidden = !cursor;
      drawTransactions();
    } catch (e) {
      showError(errors, e);
    }
  }
  more.addEventListener('click', () => void loadTransactions());

  void (async () => {
    try {
      const [b, d] = await Promise.all([get<Balance>('/api/billing/balance'), get<DepositInfo>('/api/billing/deposit-info')]);
      clear(summary);
      summary.append(h('section', { class: 'card' },
        h('div', { class: 'big', 'data-testid': 'balance' }, `${usdc(b.balance)} ${b.currency}`),
        b.lowBalance ? h('div', { class: 'error' }, h('strong', {}, 'Low balance. '),
                         'It will not pay for your running VMs much longer; at zero they are stopped (not deleted). Deposit to keep them running.') : null,
        h('dl', { class: 'facts' },
          h('dt', {}, 'Running VMs cost'), h('dd', {}, `${usdc(b.runningHourlyCost)} ${b.currency} / hour`),
          h('dt', {}, 'Earned by your nodes'), h('dd', {}, `${usdc(b.nodeEarnings)} ${b.currency}`),
          h('dt', {}, 'Earned as a relay'), h('dd', {}, `${usdc(b.relayEarnings)} ${b.currency}`),
          h('dt', {}, 'Payouts in flight'), h('dd', {}, `${usdc(b.payoutsInFlight)} ${b.currency}`)),
        b.events.length ? h('ul', { class: 'small' }, ...b.events.map((e) => h('li', {}, badge(e.kind, 'warn'), ' ', when(e.at)))) : null));
      deposit.append(h('section', { class: 'card', 'data-testid': 'deposit-info' }, h('h2', {}, 'Deposit'),
        d.depositAddress
          ? h('div', {},
              h('p', {}, `Send ${d.currency} on chain ${d.chainId} from your signed-in wallet to:`),
              h('p', {}, h('code', { class: 'big-code' }, d.depositAddress), ' ', copyButton(d.depositAddress)),
              h('p', { class: 'small' }, `Token contract: `, h('code', {}, d.tokenAddress), ` (${d.decimals} decimals). `,
                `Credited to the sending wallet after ${d.confirmations} confirmations. Send only ${d.currency}, only from this wallet.`))
          : h('p', { class: 'muted' }, 'Deposits are not open on this platform yet (no deposit address is configured).')));
    } catch (e) {
      clear(summary);
      showError(errors, e);
    }
    await loadTransactions();
  })();
};
