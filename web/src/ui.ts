// Small DOM helpers: elements from code (no innerHTML with data, so nothing the API returns can
// inject markup), error boxes that say what to do, and formatting.

import { ApiError } from './api';

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {},
                                                         ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = String(value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number'
                         ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

// A box describing an error: what happened, what to do, and the id to quote.
export function errorBox(error: unknown): HTMLElement {
  if (error instanceof ApiError) {
    return h('div', { class: 'error', role: 'alert', 'data-status': error.status },
             h('strong', {}, error.title),
             error.detail ? h('span', {}, `: ${error.detail}`) : null,
             h('div', { class: 'hint' }, error.hint),
             error.requestId ? h('div', { class: 'muted small' }, `Request id ${error.requestId}`) : null);
  }
  const message = error instanceof Error ? error.message : String(error);
  return h('div', { class: 'error', role: 'alert' }, h('strong', {}, message));
}

// Shows `error` in `slot` (replacing what was there); null clears it.
export function showError(slot: HTMLElement, error: unknown | null): void {
  clear(slot);
  if (error !== null) slot.appendChild(errorBox(error));
}

export function spinner(text: string): HTMLElement {
  return h('span', { class: 'progress', role: 'status' }, h('span', { class: 'spin' }), text);
}

export function badge(text: string, kind = text): HTMLElement {
  return h('span', { class: `badge badge-${kind}` }, text);
}

export function usdc(amount: string | null | undefined): string {
  if (amount === null || amount === undefined || amount === '') return '–';
  // "0.001340" -> "0.00134"; keep at least two decimals
  const [whole, frac = ''] = amount.split('.');
  let f = frac.replace(/0+$/, '');
  if (f.length < 2) f = f.padEnd(2, '0');
  return `${whole}.${f}`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function mib(n: number): string {
  return n >= 1024 ? `${(n / 1024).toFixed(n % 1024 === 0 ? 0 : 1)} GiB` : `${n} MiB`;
}

export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : '–';
}

export function table(headers: string[], rows: Child[][], attrs: Attrs = {}): HTMLTableElement {
  return h('table', attrs,
           h('thead', {}, h('tr', {}, ...headers.map((t) => h('th', {}, t)))),
           h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))));
}

// A labelled form field.
export function field(label: string, input: HTMLElement, help?: string): HTMLElement {
  return h('label', { class: 'field' }, h('span', {}, label), input,
           help ? h('small', { class: 'muted' }, help) : null);
}

export function copyButton(text: string): HTMLElement {
  return h('button', {
    type: 'button', class: 'link small',
    onclick: () => { void navigator.clipboard?.writeText(text); },
  }, 'copy');
}
