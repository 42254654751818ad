import { get, post, type MarketNode, type Quote, type Template, type Vm } from '../api';
import type { Page } from '../main';
import { navigate } from '../nav';
import { badge, clear, field, h, mib, showError, spinner, usdc } from '../ui';

// The whole catalogue, a page at a time (bounded: a catalogue larger than this is cut short).
async function allTemplates(): Promise<Template[]> {
  const templates: Template[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 20; page++) {
    const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const r = await get<{ templates: Template[]; nextCursor: string | null }>(`/api/templates?limit=500${query}`);
    templates.push(...r.templates);
    cursor = r.nextCursor;
    if (!cursor) break;
  }
  return templates;
}

interface SshKey {
  id: string;
  name: string;
  fingerprint: string;
}

// Deploy a VM: pick a template and a node, get a quote (where and for how much), then create.
export const deployPage: Page = (main, _params, query) => {
  const errors = h('div', {});
  const quoteBox = h('div', { 'data-testid': 'quote' });
  const form = h('form', { class: 'deploy', 'data-testid': 'deploy-form' });
  main.append(h('h1', {}, 'Deploy a VM'), spinner('Loading templates and nodes…'));

  void (async () => {
    let templates: Template[] = [];
    let nodes: MarketNode[] = [];
    let keys: SshKey[] = [];
    let images: string[] = [];
    try {
      [templates, nodes, keys, images] = await Promise.all([
        allTemplates(),
        get<{ nodes: MarketNode[] }>('/api/marketplace/nodes?limit=100', { auth: false }).then((r) => r.nodes),
        get<{ sshKeys: SshKey[] }>('/api/users/me/ssh-keys').then((r) => r.sshKeys),
        get<{ images: { name: string }[] }>('/api/images', { auth: false }).then((r) => r.images.map((i) => i.name)),
      ]);
    } catch (e) {
      main.lastElementChild?.remove();
      showError(errors, e);
      main.append(errors);
      return;
    }
    main.lastElementChild?.remove();

    const templateSelect = h('select', { name: 'template', 'data-testid': 'template' },
                             h('option', { value: '' }, 'none (plain image)'),
                             ...templates.filter((t) => !t.deprecated).map((t) =>
                               h('option', { value: t.id },
                                 t.source === 'community' ? `${t.name || t.id} (community${t.author ? `, by ${t.author.slice(0, 6)}…${t.author.slice(-4)}` : ''})` : t.name || t.id)));
    const templateInfo = h('div', { class: 'muted small' });
    // Without a template: a plain image, optionally with the user's own cloud-init.
    const imageSelect = h('select', { name: 'image', 'data-testid': 'image' },
                          ...images.map((i) => h('option', { value: i }, i)));
    const userData = h('textarea', { name: 'userData', rows: 6, maxlength: 65536, spellcheck: false,
                                     placeholder: '#cloud-config\npackages: [nginx]', 'data-testid': 'user-data' });
    const plainBox = h('div', {},
      field('Image', imageSelect),
      field('Your cloud-init user-data (optional)', userData,
            '#cloud-config or a #! script, run at first boot after the platform\'s own (SSH keys, host name)'));
    const paramBox = h('div', { class: 'params' });
    const name = h('input', { name: 'name', required: true, maxlength: 63, value: `vm-${Math.random().toString(36).slice(2, 7)}`, 'data-testid': 'vm-name' });
    const cores = h('input', { name: 'cpuCores', type: 'number', min: 1, max: 64, value: 1 });
    const memory = h('input', { name: 'memoryMib', type: 'number', min: 128, step: 128, value: 1024 });
    const disk = h('input', { name: 'diskGib', type: 'number', min: 1, value: 10 });
    const tier = h('select', { name: 'tier' },
                   ...['standard', 'guaranteed', 'balanced', 'burstable'].map((t) => h('option', { value: t }, t)));
    const nodeSelect = h('select', { name: 'nodeId', 'data-testid': 'node' },
                         h('option', { value: '' }, 'any node (best placement)'),
                         ...nodes.filter((n) => n.availability.online).map((n) =>
                           h('option', { value: n.id, selected: n.id === query.get('node') },
                             `${n.displayName || n.id.slice(0, 8)} · ${n.region || 'no region'} · ${n.availability.freePoints} free points${n.behindCgnat ? ' · CGNAT' : ''}`)));
    const keyBoxes = keys.map((k) => h('label', { class: 'check' },
                                       h('input', { type: 'checkbox', name: 'sshKeyIds', value: k.id, checked: true }),
                                       `${k.name} (${k.fingerprint})`));

    function onTemplate(): void {
      clear(paramBox);
      clear(templateInfo);
      const t = templates.find((x) => x.id === templateSelect.value);
      plainBox.hidden = t !== undefined;
      if (!t) return;
      templateInfo.append(t.description, ` Needs at least ${t.minimum.cpuCores} cores, ${mib(t.minimum.memoryMib)}, ${t.minimum.diskGib} GiB.`,
                          t.ports.length ? ` Ports: ${t.ports.map((p) => `${p.port} (${p.name})`).join(', ')}.` : '');
      cores.value = String(Math.max(Number(cores.value), t.minimum.cpuCores));
      memory.value = String(Math.max(Number(memory.value), t.minimum.memoryMib));
      disk.value = String(Math.max(Number(disk.value), t.minimum.diskGib));
      for (const p of t.parameters) {
        const input = p.type === 'boolean'
          ? h('input', { type: 'checkbox', 'data-param': p.name, checked: p.default === true })
          : h('input', {
              'data-param': p.name,
              type: p.secret ? 'password' : p.type === 'integer' ? 'number' : 'text',
              value: p.default === undefined ? '' : String(p.default),
              required: p.default === undefined,
              pattern: p.pattern ?? null, min: p.minimum ?? null, max: p.maximum ?? null,
            });
        paramBox.append(field(p.name + (p.default === undefined ? ' *' : ''), input,
                              p.description + (p.secret ? ' (secret: never shown again)' : '')));
      }
    }
    templateSelect.addEventListener('change', onTemplate);
    onTemplate();

    function request(): Record<string, unknown> {
      const body: Record<string, unknown> = {
        name: name.value.trim(),
        cpuCores: Number(cores.value),
        memoryMib: Number(memory.value),
        diskGib: Number(disk.value),
        tier: tier.value,
      };
      if (nodeSelect.value) body.nodeId = nodeSelect.value;
      const t = templates.find((x) => x.id === templateSelect.value);
      if (t) {
        body.template = t.id;
        const params: Record<string, unknown> = {};
        for (const p of t.parameters) {
          const input = paramBox.querySelector<HTMLInputElement>(`[data-param="${p.name}"]`);
          if (!input) continue;  // the form is being rebuilt for another template
          if (p.type === 'boolean') params[p.name] = input.checked;
          else if (input.value !== '') params[p.name] = p.type === 'integer' ? Number(input.value) : input.value;
        }
        body.templateParams = params;
      } else {
        body.image = imageSelect.value;
        if (userData.value.trim()) body.userData = userData.value;
      }
      const ids = keyBoxes.map((l) => l.querySelector('input')!).filter((i) => i.checked).map((i) => i.value);
      if (ids.length) body.sshKeyIds = ids;
      return body;
    }

    const quoteButton = h('button', { type: 'submit', 'data-testid': 'get-quote' }, 'Get a quote');
    const createButton = h('button', { type: 'button', 'data-testid': 'create-vm', disabled: true }, 'Create VM');
    let quoted = '';
    // Any change invalidates the quote: the VM created is the one quoted.
    form.addEventListener('input', () => {
      if (JSON.stringify(request()) !== quoted) createButton.disabled = true;
    });

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      showError(errors, null);
      quoteButton.disabled = true;
      createButton.disabled = true;
      quoteBox.replaceChildren(spinner('Asking where it would go and what it costs…'));
      const body = request();
      try {
        const q = await post<Quote>('/api/vms/quote', body);
        clear(quoteBox);
        if (!q.placement) {
          quoteBox.append(h('div', { class: 'error', role: 'alert' },
                            h('strong', {}, 'No node can take this VM.'),
                            h('div', {}, q.explanation ?? ''),
                            h('ul', { class: 'small' }, ...q.rejections.slice(0, 8).map((r) =>
                              h('li', {}, `${r.nodeId.slice(0, 8)}: ${r.reason}${r.detail ? ` (${r.detail})` : ''}`))),
                            h('div', { class: 'hint' }, 'Lower cores, memory or disk, choose a more overcommitted tier, or another node.')));
          return;
        }
        const node = q.node;
        quoteBox.append(h('div', { class: 'card quote' },
          h('div', { class: 'price', 'data-testid': 'quote-price' }, `${usdc(q.placement.hourlyRateUsdc)} USDC / hour`),
          h('div', {}, `on ${node?.displayName || q.placement.nodeId.slice(0, 8)}`, node?.region ? ` (${node.region})` : '',
            ` · ${q.placement.computePoints} compute points`, q.behindCgnat ? badge('CGNAT', 'cgnat') : null),
          q.relay?.note ? h('div', { class: 'muted small' }, q.relay.note) : null,
          h('div', { class: 'muted small' }, 'Billed per started hour from your prepaid balance while the VM runs; stopped VMs cost nothing.')));
        quoted = JSON.stringify(body);
        createButton.disabled = false;
      } catch (e) {
        clear(quoteBox);
        showError(errors, e);
      } finally {
        quoteButton.disabled = false;
      }
    });

    // One key per quoted request: a double click or a retry after a timeout creates one VM.
    let idempotencyKey = '';
    let keyFor = '';
    createButton.addEventListener('click', async () => {
      showError(errors, null);
      createButton.disabled = true;
      const status = spinner('Creating and placing the VM…');
      quoteBox.append(status);
      if (keyFor !== quoted) {
        idempotencyKey = crypto.randomUUID();
        keyFor = quoted;
      }
      try {
        const vm = await post<Vm>('/api/vms', JSON.parse(quoted),
                                  { headers: { 'Idempotency-Key': idempotencyKey } });
        navigate(`/vms/${vm.id}`);
      } catch (e) {
        status.remove();
        showError(errors, e);
        createButton.disabled = false;
      }
    });

    form.append(
      h('fieldset', {}, h('legend', {}, 'What'),
        field('Template', templateSelect), templateInfo, paramBox, plainBox,
        field('Name', name, 'any printable text; the host name is derived from it')),
      h('fieldset', {}, h('legend', {}, 'Size'),
        h('div', { class: 'row' }, field('CPU cores', cores), field('Memory (MiB)', memory), field('Disk (GiB)', disk),
          field('Tier', tier, 'CPU overcommit: guaranteed 1:1 … burstable 4:1'))),
      h('fieldset', {}, h('legend', {}, 'Where'), field('Node', nodeSelect)),
      keyBoxes.length
        ? h('fieldset', {}, h('legend', {}, 'SSH keys'), ...keyBoxes)
        : h('p', { class: 'muted small' }, 'You have no SSH keys registered (decloud ssh-key add); the VM will be reachable through its template\'s ports only.'),
      h('div', { class: 'actions' }, quoteButton, createButton));
    main.append(form, quoteBox, errors);
  })();
};
