import { get, type Vm } from '../api';
import type { Page } from '../main';
import { clear, h, mib, shortId, showError, spinner, table, usdc } from '../ui';
import { actionButtons, kBusyStates, stateView } from '../vm_actions';

export const vmsPage: Page = (main) => {
  const errors = h('div', {});
  const list = h('div', { 'data-testid': 'vm-list' }, spinner('Loading your VMs…'));
  main.append(h('div', { class: 'title-row' }, h('h1', {}, 'My VMs'),
                h('a', { href: '/deploy', 'data-nav': '', class: 'button' }, 'Deploy a VM')),
              errors, list);
  let timer = 0;
  let stopped = false;

  async function load(): Promise<void> {
    let vms: Vm[] = [];
    try {
      let cursor: string | null = null;
      do {
        const r: { vms: Vm[]; nextCursor: string | null } =
          await get(`/api/vms?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
        vms = vms.concat(r.vms);
        cursor = r.nextCursor;
      } while (cursor);
    } catch (e) {
      showError(errors, e);
      schedule(10_000);
      return;
    }
    if (stopped) return;
    clear(list);
    if (!vms.length) {
      list.append(h('p', { class: 'muted' }, 'You have no VMs yet. ',
                    h('a', { href: '/deploy', 'data-nav': '' }, 'Deploy one'), ' from a template.'));
    } else {
      list.append(table(['Name', 'State', 'Size', 'Price / hour', 'Node', 'Addresses', ''],
        vms.map((vm) => [
          h('a', { href: `/vms/${vm.id}`, 'data-nav': '', 'data-testid': 'vm-link' }, vm.name),
          stateView(vm),
          `${vm.cpuCores} cores · ${mib(vm.memoryMib)} · ${vm.diskGib} GiB`,
          `${usdc(vm.hourlyRateUsdc)} USDC`,
          h('code', {}, shortId(vm.nodeId)),
          vm.addresses.length ? vm.addresses.join(', ') : '–',
          actionButtons(vm, errors, () => void load()),
        ]), { 'data-testid': 'vm-table' }));
    }
    // Fast while a change is under way, slow otherwise.
    schedule(vms.some((v) => kBusyStates.has(v.state)) ? 2_000 : 10_000);
  }

  function schedule(ms: number): void {
    window.clearTimeout(timer);
    if (!stopped) timer = window.setTimeout(() => void load(), ms);
  }

  void load();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
};
