// The console's shell: a navigation bar, a client-side router over the History API (the
// orchestrator answers every console path with index.html) and the signed-in wallet.

import './style.css';
import { loadSession, setSessionLostHandler } from './api';
import { navigate, setRenderer } from './nav';
import { billingPage } from './pages/billing';
import { deployPage } from './pages/deploy';
import { marketPage } from './pages/market';
import { operatorPage } from './pages/operator';
import { signInPage } from './pages/signin';
import { vmPage } from './pages/vm';
import { vmsPage } from './pages/vms';
import { clear, h } from './ui';
import { signOut } from './wallet';

// A page renders into `main` and may return a cleanup (stops its polling) for when it is left.
export type Page = (main: HTMLElement, params: Record<string, string>,
                    query: URLSearchParams) => (() => void) | void;

interface Route {
  pattern: RegExp;
  keys: string[];
  page: Page;
  auth: boolean;
}

function route(path: string, page: Page, auth = true): Route {
  const keys: string[] = [];
  const pattern = new RegExp(`^${path.replace(/:(\w+)/g, (_, k: string) => {
    keys.push(k);
    return '([^/]+)';
  })}/?$`);
  return { pattern, keys, page, auth };
}

const routes: Route[] = [
  route('/signin', signInPage, false),
  route('/market', marketPage, false),
  route('/deploy', deployPage),
  route('/vms', vmsPage),
  route('/vms/:id', vmPage),
  route('/billing', billingPage),
  route('/operator', operatorPage),
];

let cleanup: (() => void) | void;

function navBar(): HTMLElement {
  const session = loadSession();
  const link = (href: string, text: string) =>
    h('a', { href, 'data-nav': '', class: location.pathname.startsWith(href) ? 'active' : '' }, text);
  return h('nav', { class: 'top' },
           h('a', { href: '/market', 'data-nav': '', class: 'brand' }, 'DeCloud'),
           link('/market', 'Marketplace'),
           session ? link('/deploy', 'Deploy') : null,
           session ? link('/vms', 'My VMs') : null,
           session ? link('/billing', 'Billing') : null,
           session ? link('/operator', 'Operator') : null,
           h('span', { class: 'spacer' }),
           session
             ? h('span', { class: 'wallet' },
                 h('code', { title: session.walletAddress, 'data-testid': 'wallet' },
                   `${session.walletAddress.slice(0, 6)}…${session.walletAddress.slice(-4)}`),
                 h('button', {
                   type: 'button', class: 'secondary', 'data-testid': 'sign-out',
                   onclick: async (ev: Event) => {
                     (ev.currentTarget as HTMLButtonElement).disabled = true;
                     try {
                       await signOut();
                     } finally {
                       navigate('/signin?signedOut=1');
                     }
                   },
                 }, 'Sign out'))
             : h('a', { href: '/signin', 'data-nav': '', class: 'button' }, 'Sign in'));
}

function render(): void {
  if (cleanup) cleanup();
  cleanup = undefined;
  const app = document.getElementById('app')!;
  clear(app);
  let path = location.pathname;
  if (path === '/' || path === '') {
    path = loadSession() ? '/vms' : '/market';
    history.replaceState(null, '', path);
  }
  const main = h('main', {});
  app.append(navBar(), main);
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    if (r.auth && !loadSession()) {
      navigate(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`, true);
      return;
    }
    const params: Record<string, string> = {};
    r.keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
    cleanup = r.page(main, params, new URLSearchParams(location.search));
    return;
  }
  main.append(h('h1', {}, 'Not found'),
              h('p', {}, 'There is no such page. ', h('a', { href: '/market', 'data-nav': '' }, 'Go to the marketplace')));
}

// Links marked data-nav stay in the app.
document.addEventListener('click', (ev) => {
  const a = (ev.target as Element).closest?.('a[data-nav]') as HTMLAnchorElement | null;
  if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  navigate(a.getAttribute('href')!);
});
window.addEventListener('popstate', render);
setRenderer(render);
setSessionLostHandler(() => {
  navigate(`/signin?expired=1&next=${encodeURIComponent(location.pathname)}`, true);
});
render();
