// VM state presentation and the actions a state allows, shared by the list and the detail page.

import { del, post, type Vm } from './api';
import { badge, h, showError, spinner } from './ui';

// States in which a change is under way (the page polls and shows progress).
export const kBusyStates = new Set(['pending', 'scheduling', 'provisioning', 'stopping', 'deleting']);

const kBusyText: Record<string, string> = {
  pending: 'waiting…',
  scheduling: 'placing…',
  provisioning: 'starting on its node…',
  stopping: 'stopping…',
  deleting: 'deleting…',
};

export function stateView(vm: Vm): HTMLElement {
  return h('span', { class: 'state', 'data-testid': 'vm-state', 'data-state': vm.state },
           badge(vm.state),
           kBusyState(vm) ? spinner(kBusyText[vm.state] ?? '') : null,
           vm.nodeOffline ? badge('node offline', 'offline') : null);
}

function kBusyState(vm: Vm): boolean {
  return kBusyStates.has(vm.state);
}

// Buttons for what `vm.state` allows; `changed` runs after the server accepted a change.
export function actionButtons(vm: Vm, errors: HTMLElement, changed: () => void): HTMLElement {
  const box = h('span', { class: 'vm-actions' });
  const act = (label: string, testid: string, run: () => Promise<unknown>, confirmText?: string) =>
    h('button', {
      type: 'button', class: label === 'Delete' ? 'danger small' : 'secondary small', 'data-testid': testid,
      onclick: async (ev: Event) => {
        if (confirmText && !window.confirm(confirmText)) return;
        const b = ev.currentTarget as HTMLButtonElement;
        for (const other of box.querySelectorAll('button')) other.disabled = true;
        b.replaceChildren(spinner(label));
        showError(errors, null);
        try {
          await run();
        } catch (e) {
          showError(errors, e);
        }
        changed();
      },
    }, label);
  const path = `/api/vms/${vm.id}`;
  if (vm.state === 'stopped') box.append(act('Start', 'vm-start', () => post(`${path}/start`)));
  if (vm.state === 'running') {
    box.append(act('Stop', 'vm-stop', () => post(`${path}/stop`)),
               act('Reboot', 'vm-reboot', () => post(`${path}/reboot`)));
  }
  if (vm.state !== 'deleting' && vm.state !== 'deleted') {
    box.append(act('Delete', 'vm-delete', () => del(path),
                   `Delete ${vm.name}? Its disk is destroyed on the node; this cannot be undone.`));
  }
  return box;
}
