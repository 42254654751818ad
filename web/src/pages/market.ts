import { get, loadSession, type MarketNode } from '../api';
import type { Page } from '../main';
import { badge, clear, field, h, mib, showError, spinner, table } from '../ui';

interface SearchReply {
  nodes: MarketNode[];
  nextCursor: string | null;
}

// The filters the form offers, by query parameter of GET /api/marketplace/nodes.
const kTextFilters: [string, string, string][] = [
  ['region', 'Region', 'e.g. eu-west'],
  ['tagsAll', 'Tags (all of)', 'comma-separated'],
  ['maxPrice', 'Max price per point', 'micro-USDC per compute point and hour'],
  ['minUptime', 'Min 30-day uptime %', '0 to 100'],
  ['minFreePoints', 'Min free points', 'at the tier below'],
  ['minFreeMemoryMib', 'Min free memory (MiB)', ''],
  ['cores', 'VM cores for the price', 'default 1'],
];

function select(name: string, options: [string, string][], value: string): HTMLSelectElement {
  const s = h('select', { name });
  for (const [v, label] of options) s.append(h('option', { value: v, selected: v === value }, label));
  return s;
}

export const marketPage: Page = (main, _params, query) => {
  const form = h('form', { class: 'filters', 'data-testid': 'market-filters' });
  for (const [name, label, help] of kTextFilters) {
    form.append(field(label, h('input', { name, value: query.get(name) ?? '', placeholder: help })));
  }
  form.append(
    field('Tier', select('tier', [['', 'any'], ['guaranteed', 'guaranteed 1:1'], ['standard', 'standard 1.5:1'],
                                  ['balanced', 'balanced 2:1'], ['burstable', 'burstable 4:1']], query.get('tier') ?? '')),
    field('GPU', select('gpu', [['', 'any'], ['true', 'with GPU'], ['false', 'without']], query.get('gpu') ?? '')),
    field('CGNAT', select('cgnat', [['', 'any'], ['false', 'public IP'], ['true', 'behind CGNAT (relayed)']], query.get('cgnat') ?? '')),
    field('Featured', select('featured', [['', 'any'], ['true', 'featured only']], query.get('featured') ?? '')),
    field('Sort by', select('sort', [['price', 'price'], ['uptime', 'uptime'], ['free', 'free capacity'], ['points', 'compute points']], query.get('sort') ?? 'price')),
    field('Order', select('order', [['', 'default'], ['asc', 'ascending'], ['desc', 'descending']], query.get('order') ?? '')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', 'data-testid': 'search' }, 'Search')));

  const results = h('div', { 'data-testid': 'market-results' });
  const errors = h('div', {});
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'More nodes');
  let cursor: string | null = null;
  let rows: MarketNode[] = [];
  let signedIn = loadSession() !== null;

  function params(): URLSearchParams {
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) {
      const s = String(v).trim();
      if (s && !(k === 'sort' && s === 'price')) p.set(k, s);  // price is the default order
    }
    return p;
  }

  function draw(): void {
    clear(results);
    if (!rows.length) {
      results.append(h('p', { class: 'muted' }, 'No node matches these filters. Widen them (price, uptime, free capacity) and search again.'));
      return;
    }
    results.append(table(
      ['Node', 'Region', 'Price / hour', 'Uptime 30 d', 'Free', 'Status', ''],
      rows.map((n) => [
        h('div', {}, h('strong', {}, n.displayName || n.id.slice(0, 8)),
          n.featured ? badge('featured') : null,
          h('div', { class: 'muted small' }, `${n.cpuCores} cores · ${mib(n.memoryMib)} · ${n.diskGib} GiB · ${n.computePoints} points`,
            n.gpus.length ? ` · ${n.gpus.map((g) => g.model || g.vendor).join(', ')}` : ''),
          n.tags.length ? h('div', { class: 'small' }, ...n.tags.map((t) => h('span', { class: 'tag' }, t))) : null),
        n.region || '–',
        n.hourlyPriceUsdc ? `${n.hourlyPriceUsdc} USDC` : '–',
        `${n.reputation.uptime30dPercent.toFixed(2)} %`,
        h('span', { class: 'small' }, `${n.availability.freePoints} points, ${mib(n.availability.freeMemoryMib)}, ${n.availability.freeDiskGib} GiB`),
        h('span', {}, badge(n.availability.online ? 'online' : 'offline'), n.behindCgnat ? badge('CGNAT', 'cgnat') : null),
        signedIn && n.availability.online
          ? h('a', { href: `/deploy?node=${n.id}`, 'data-nav': '', class: 'button small', 'data-testid': 'deploy-here' }, 'Deploy here')
          : null,
      ]),
      { class: 'market', 'data-testid': 'market-table' }));
  }

  async function search(append: boolean): Promise<void> {
    showError(errors, null);
    const p = params();
    if (append && cursor) p.set('cursor', cursor);
    if (!append) {
      history.replaceState(null, '', `/market${p.size ? `?${p}` : ''}`);
      results.replaceChildren(spinner('Searching…'));
    }
    try {
      const r = await get<SearchReply>(`/api/marketplace/nodes?${p}`, { auth: false });
      rows = append ? rows.concat(r.nodes) : r.nodes;
      cursor = r.nextCursor;
      more.hidden = !cursor;
      signedIn = loadSession() !== null;
      draw();
    } catch (e) {
      if (!append) clear(results);
      showError(errors, e);
    }
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void search(false);
  });
  more.addEventListener('click', () => void search(true));
  main.append(h('h1', {}, 'Marketplace'),
              h('p', { class: 'muted' }, 'Nodes offered by operators, with their price, uptime and free capacity (read live).'),
              form, errors, results, more);
  void search(false);
};
