import type { Page } from '../main';
import { navigate } from '../nav';
import { h, showError, spinner } from '../ui';
import { hasWallet, signIn } from '../wallet';

export const signInPage: Page = (main, _params, query) => {
  const status = h('div', { class: 'status' });
  const errors = h('div', {});
  const button = h('button', { type: 'button', 'data-testid': 'sign-in' }, 'Sign in with your wallet');
  const next = query.get('next');
  button.addEventListener('click', async () => {
    button.disabled = true;
    showError(errors, null);
    try {
      await signIn((step) => status.replaceChildren(spinner(step)));
      // only paths of this console, never another origin
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/vms', true);
    } catch (e) {
      status.replaceChildren();
      showError(errors, e);
      button.disabled = false;
    }
  });
  main.append(
    h('section', { class: 'card narrow' },
      h('h1', {}, 'Sign in'),
      query.get('signedOut') ? h('p', { class: 'notice', 'data-testid': 'signed-out' }, 'You are signed out.') : null,
      query.get('expired') ? h('p', { class: 'notice' }, 'Your session ended. Sign in again to continue.') : null,
      h('p', {}, 'DeCloud has no passwords: you sign a one-time message with your Ethereum wallet ',
        '(Sign-In with Ethereum). Signing costs nothing and sends no transaction.'),
      hasWallet()
        ? button
        : h('div', { class: 'error', role: 'alert' },
            h('strong', {}, 'No wallet found in this browser.'),
            h('div', { class: 'hint' }, 'Install MetaMask or another browser wallet, then reload this page.')),
      status, errors,
      h('p', { class: 'muted small' }, 'Browsing the ', h('a', { href: '/market', 'data-nav': '' }, 'marketplace'),
        ' needs no sign-in.')));
};
