import { del, get, put, type PublicPort, type Template, type Vm } from '../api';
import type { Page } from '../main';
import { append, clear, copyButton, h, mib, showError, spinner, table, usdc, when } from '../ui';
import { actionButtons, kBusyStates, stateView } from '../vm_actions';

interface VmEvent {
  at: string;
  from: string | null;
  to: string;
  reason: string;
}

// GET /api/vms/{id}/boot-log: the console output of a guest that stopped by itself.
interface BootLog {
  capturedAt: string;
  ranForSeconds: number | null;
  failedToStart: boolean;
  log: string;
}

// Whether a stopped or failed VM has a kept boot log to show.
function showsBootLog(vm: Vm): boolean {
  return vm.bootLogKept && (vm.state === 'stopped' || vm.state === 'failed');
}

function bootLogCard(log: BootLog): HTMLElement {
  const ran = log.ranForSeconds === null ? '' : ` ${log.ranForSeconds} s after it was started`;
  const heading = log.failedToStart ? 'Boot log: the VM failed to start' : 'Console log before it stopped';
  const text = h('pre', { class: 'boot-log', 'data-testid': 'vm-boot-log' },
                 log.log || '(the guest wrote nothing on its serial console)');
  const card = h('section', { class: 'card' }, h('h2', {}, heading),
    h('p', { class: 'muted small' },
      `Its guest stopped by itself${ran} (${when(log.capturedAt)}). `,
      'The last lines its serial console printed are below; a kernel panic, a missing disk or a bad cloud-init config usually shows here. ',
      'Start the VM again after fixing its image or user-data, or delete it.'),
    text);
  // Show the end, where the failure is, without the user scrolling a long log.
  requestAnimationFrame(() => { text.scrollTop = text.scrollHeight; });
  return card;
}

export const vmPage: Page = (main, params) => {
  const id = params.id;
  const errors = h('div', {});
  const body = h('div', {}, spinner('Loading the VM…'));
  const consoleHost = h('div', {});
  const consoleStatus = h('div', { class: 'muted small', 'data-testid': 'console-status' });
  let closeConsole: (() => void) | null = null;
  const consoleButton = h('button', { type: 'button', class: 'secondary', 'data-testid': 'open-console' }, 'Open serial console');
  // Pressing the button while the terminal has focus would move focus to it, and Chromium then
  // scrolls the page (by the terminal's helper textarea) between mouse down and up, so the
  // click misses the button. The terminal keeps focus; keyboard users still reach the button.
  consoleButton.addEventListener('mousedown', (e) => {
    if (closeConsole) e.preventDefault();
  });
  consoleButton.addEventListener('click', () => {
    if (closeConsole) {
      closeConsole();
      closeConsole = null;
      clear(consoleHost);
      consoleStatus.textContent = '';
      consoleButton.textContent = 'Open serial console';
      return;
    }
    // xterm.js loads only when a console is opened.
    consoleButton.disabled = true;
    consoleStatus.textContent = 'Loading the terminal…';
    void import('../console').then(({ openConsole }) => {
      consoleButton.disabled = false;
      if (stopped) return;
      closeConsole = openConsole(consoleHost, id, consoleStatus);
      consoleButton.textContent = 'Close console';
    }, (e: unknown) => {
      consoleButton.disabled = false;
      consoleStatus.textContent = `The terminal did not load (${String(e)}); reload the page.`;
    });
  });
  main.append(h('p', {}, h('a', { href: '/vms', 'data-nav': '' }, '← My VMs')), errors, body,
              h('section', { class: 'card' }, h('h2', {}, 'Serial console'),
                h('p', { class: 'muted small' }, 'The VM\'s serial port (ttyS0): boot messages and a login prompt.'),
                consoleButton, consoleStatus, consoleHost));
  let timer = 0;
  let stopped = false;
  let template: Template | null = null;
  // The boot log (up to 64 KiB) is fetched again only when the VM changed, not at every refresh.
  let bootLog: { updatedAt: string; log: BootLog } | null = null;
  // Kept across reloads of the page's data, so a half-typed port survives the refresh timer.
  const publicPorts = h('div', { 'data-testid': 'vm-public-ports' });
  const portInput = h('input', { type: 'number', min: 1, max: 65535, placeholder: '8080', 'aria-label': 'VM port', 'data-testid': 'publish-port' });
  const protocolInput = h('select', { 'aria-label': 'Protocol' }, h('option', { value: 'tcp' }, 'TCP'), h('option', { value: 'udp' }, 'UDP'));
  const portErrors = h('div', {});
  const publishButton = h('button', { type: 'button', class: 'secondary', 'data-testid': 'publish' }, 'Publish');
  publishButton.addEventListener('click', () => {
    const port = Number(portInput.value);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      showError(portErrors, new Error('A port is a whole number from 1 to 65535.'));
      return;
    }
    publishButton.disabled = true;
    put<PublicPort>(`/api/vms/${id}/ports/${port}?protocol=${protocolInput.value}`).then(() => {
      portInput.value = '';
      showError(portErrors, null);
      return loadPorts();
    }, (e: unknown) => showError(portErrors, e)).finally(() => { publishButton.disabled = false; });
  });
  const publishForm = h('div', { class: 'actions' }, portInput, protocolInput, publishButton);

  // Ports published through the relay of a node behind CGNAT: reachable from anywhere.
  async function loadPorts(): Promise<void> {
    let ports: PublicPort[];
    try {
      ports = (await get<{ ports: PublicPort[] }>(`/api/vms/${id}/ports`)).ports;
    } catch (e) {
      showError(portErrors, e);
      return;
    }
    clear(publicPorts);
    if (!ports.length) {
      append(publicPorts, h('p', { class: 'muted small' }, 'No port published. A VM on a node behind CGNAT can publish a port on its relay\'s public address.'));
      return;
    }
    append(publicPorts, h('ul', {}, ...ports.map((p) => {
      const remove = h('button', { type: 'button', class: 'secondary small' }, 'Remove');
      remove.addEventListener('click', () => {
        remove.disabled = true;
        del(`/api/vms/${id}/ports/${p.vmPort}?protocol=${p.protocol}`).then(() => loadPorts(),
          (e: unknown) => { remove.disabled = false; showError(portErrors, e); });
      });
      return h('li', {}, `${p.protocol.toUpperCase()} ${p.vmPort} → `, h('code', {}, p.publicUrl), ' ', copyButton(p.publicUrl), ' ', remove);
    })));
  }

  async function load(): Promise<void> {
    let vm: Vm;
    let events: VmEvent[];
    try {
      [vm, events] = await Promise.all([
        get<Vm>(`/api/vms/${id}`),
        get<{ events: VmEvent[] }>(`/api/vms/${id}/events`).then((r) => r.events),
      ]);
      if (showsBootLog(vm) && bootLog?.updatedAt !== vm.updatedAt) {
        bootLog = { updatedAt: vm.updatedAt, log: await get<BootLog>(`/api/vms/${id}/boot-log`) };
      }
      if (vm.template && template?.id !== vm.template) template = await get<Template>(`/api/templates/${vm.template}`);
    } catch (e) {
      showError(errors, e);
      clear(body);
      schedule(10_000);
      return;
    }
    if (stopped) return;
    clear(body);
    const ports = template?.ports ?? [];
    append(body,
      h('div', { class: 'title-row' }, h('h1', { 'data-testid': 'vm-name' }, vm.name), stateView(vm)),
      vm.stateReason ? h('p', { class: 'muted' }, vm.stateReason) : null,
      h('section', { class: 'card' },
        h('dl', { class: 'facts' },
          h('dt', {}, 'Price'), h('dd', { 'data-testid': 'vm-price' }, `${usdc(vm.hourlyRateUsdc)} USDC / hour (while running)`),
          h('dt', {}, 'Size'), h('dd', {}, `${vm.cpuCores} cores (${vm.tier}) · ${mib(vm.memoryMib)} · ${vm.diskGib} GiB`),
          h('dt', {}, 'Image'), h('dd', {}, vm.template ? `${vm.template} on ${vm.image}` : vm.image),
          h('dt', {}, 'Node'), h('dd', {}, h('code', {}, vm.nodeId ?? '–'), vm.nodeOffline ? ' (offline)' : ''),
          h('dt', {}, 'Created'), h('dd', {}, when(vm.createdAt)),
          h('dt', {}, 'VM id'), h('dd', {}, h('code', {}, vm.id), ' ', copyButton(vm.id))),
        h('div', { class: 'actions' }, actionButtons(vm, errors, () => void load()))),
      h('section', { class: 'card', 'data-testid': 'vm-access' }, h('h2', {}, 'Access'),
        vm.addresses.length
          ? h('p', {}, 'Addresses on its node\'s network: ', ...vm.addresses.map((a) => h('code', {}, a, ' ')))
          : h('p', { class: 'muted' }, vm.state === 'running' ? 'The node has not reported an address yet.' : 'Addresses appear once the VM runs.'),
        ports.length
          ? h('ul', {}, ...ports.map((p) => h('li', {},
              `${p.name} (${p.protocol} ${p.port}): `,
              p.protocol === 'http' || p.protocol === 'https'
                ? h('code', {}, `<node ingress>/api/vms/${vm.id}/proxy/http/${p.port}/`)
                : h('code', {}, `${vm.addresses[0] ?? '<vm address>'}:${p.port}`))))
          : null,
        h('p', { class: 'muted small' }, 'HTTP ports are reached through the node\'s ingress proxy by path (above) or by host name ',
          h('code', {}, `<port>-<name>.<vm domain>`), '; SSH with the keys you chose: ', h('code', {}, 'ssh decloud@<address>'), '.'),
        h('h3', {}, 'Public ports'), publicPorts, publishForm, portErrors),
      bootLog && showsBootLog(vm) ? bootLogCard(bootLog.log) : null,
      h('section', { class: 'card' }, h('h2', {}, 'Events'),
        table(['When', 'Change', 'Why'], events.slice().reverse().map((e) => [
          when(e.at), `${e.from ?? '–'} → ${e.to}`, e.reason,
        ]), { 'data-testid': 'vm-events' })));
    schedule(kBusyStates.has(vm.state) ? 2_000 : 10_000);
  }

  function schedule(ms: number): void {
    window.clearTimeout(timer);
    if (!stopped) timer = window.setTimeout(() => void load(), ms);
  }

  void load();
  void loadPorts();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    closeConsole?.();
  };
};
