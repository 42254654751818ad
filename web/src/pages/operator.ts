import { get, type Balance, type NodeInfo, type RelayAssignment } from '../api';
import type { Page } from '../main';
import { badge, clear, h, shortId, showError, spinner, table, usdc, when } from '../ui';

// For node operators: their nodes (status, uptime, heartbeats), earnings and payouts, relays.
export const operatorPage: Page = (main) => {
  const errors = h('div', {});
  const earnings = h('div', {});
  const nodesBox = h('div', { 'data-testid': 'operator-nodes' }, spinner('Loading your nodes…'));
  const relaysBox = h('div', { 'data-testid': 'operator-relays' });
  main.append(h('h1', {}, 'Operator'),
              h('p', { class: 'muted' }, 'Nodes registered with this wallet as their operator wallet (decloud-agent setup).'),
              errors, earnings,
              h('section', { class: 'card' }, h('h2', {}, 'My nodes'), nodesBox),
              h('section', { class: 'card' }, h('h2', {}, 'Relays'), relaysBox));
  let timer = 0;
  let stopped = false;

  async function load(): Promise<void> {
    try {
      let nodes: NodeInfo[] = [];
      let cursor: string | null = null;
      do {
        const r: { nodes: NodeInfo[]; nextCursor: string | null } =
          await get(`/api/nodes?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
        nodes = nodes.concat(r.nodes);
        cursor = r.nextCursor;
      } while (cursor);
      const [balance, relays] = await Promise.all([
        get<Balance>('/api/billing/balance'),
        get<{ relays: RelayAssignment[] }>('/api/relays').then((r) => r.relays),
      ]);
      if (stopped) return;
      showError(errors, null);
      clear(earnings);
      earnings.append(h('section', { class: 'card' }, h('dl', { class: 'facts' },
        h('dt', {}, 'Node earnings'), h('dd', { 'data-testid': 'node-earnings' }, `${usdc(balance.nodeEarnings)} ${balance.currency}`),
        h('dt', {}, 'Relay earnings'), h('dd', {}, `${usdc(balance.relayEarnings)} ${balance.currency}`),
        h('dt', {}, 'Payouts in flight'), h('dd', {}, `${usdc(balance.payoutsInFlight)} ${balance.currency}`)),
        h('p', { class: 'muted small' }, 'Payouts are sent to the operator wallet on chain; see Billing for each transaction.')));
      clear(nodesBox);
      nodesBox.append(nodes.length
        ? table(['Node', 'Status', 'Uptime 30 d', 'Heartbeats today', 'Load', 'Price / point / h', 'Network'],
            nodes.map((n) => [
              h('div', {}, h('code', { title: n.id }, shortId(n.id)), h('div', { class: 'small muted' },
                `${n.resources.cpuModel} · ${n.resources.cpuCores} cores · ${n.computePoints} points · agent ${n.agentVersion || '?'}`)),
              h('span', {}, badge(n.status), h('div', { class: 'small muted' }, `last heartbeat ${when(n.lastHeartbeatAt)}`)),
              `${n.uptime30dPercent.toFixed(2)} %`,
              n.heartbeats ? `${n.heartbeats.receivedToday} received, ${n.heartbeats.missedToday} missed` : '–',
              n.usage ? `${n.usage.cpuPercent.toFixed(0)} % CPU · ${n.usage.runningVms} VMs` : '–',
              `${n.pricePerPointMicroUsdc} µUSDC`,
              h('span', {}, n.behindCgnat ? badge('CGNAT', 'cgnat') : badge('public'), ' ', h('span', { class: 'small' }, n.observedIp || n.reportedIp)),
            ]))
        : h('p', { class: 'muted' }, 'No node is registered with this wallet. Install decloud-agent on a machine and run ',
            h('code', {}, 'decloud-agent setup'), ' with this wallet as the operator wallet (see the operator guide).'));
      clear(relaysBox);
      relaysBox.append(relays.length
        ? table(['Assignment', 'CGNAT node', 'Relay node', 'Role', 'State', 'Round trip', 'Endpoint', 'Since'], relays.map((r) => [
            h('code', {}, shortId(r.id)), h('code', {}, shortId(r.cgnatNodeId)), h('code', {}, shortId(r.relayNodeId)),
            r.role, h('span', {}, badge(r.state), r.stateReason ? h('div', { class: 'small muted' }, r.stateReason) : null),
            r.tunnelRttMs === null ? '–' : `${r.tunnelRttMs.toFixed(1)} ms`,
            r.relayEndpoint || '–', when(r.stateChangedAt),
          ]))
        : h('p', { class: 'muted' }, 'None of your nodes relays or is relayed.'));
    } catch (e) {
      showError(errors, e);
    }
    window.clearTimeout(timer);
    if (!stopped) timer = window.setTimeout(() => void load(), 15_000);
  }

  void load();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
};
