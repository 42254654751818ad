// The VM's serial console in an xterm.js terminal, over the WebSocket GET /api/vms/{id}/console
// (server side: the serial console work of issue 10). Frames, as proto/console_messages.hpp
// defines them:
//   server -> browser  {"type":"output","data":<base64>,"dropped":<bytes lost so far>}
//   browser -> server  {"type":"input","data":<base64>}
// Browsers cannot set an Authorization header on a WebSocket, so the access token travels as the
// `access_token` query parameter (the server must accept it for this route; TLS keeps it private).

import '@xterm/xterm/css/xterm.css';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { loadSession } from './api';
import { h } from './ui';

export function consoleUrl(vmId: string, token: string): string {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/api/vms/${encodeURIComponent(vmId)}/console?access_token=${encodeURIComponent(token)}`;
}

function toBase64(text: string): string {
  let bin = '';
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin);
}

function fromBase64(data: string): Uint8Array {
  const bin = atob(data);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// Opens the console into `host`; returns a function that closes it.
export function openConsole(host: HTMLElement, vmId: string, status: HTMLElement): () => void {
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  const box = h('div', { class: 'terminal', 'data-testid': 'console-terminal' });
  host.replaceChildren(box);
  term.open(box);
  fit.fit();
  const onResize = () => fit.fit();
  window.addEventListener('resize', onResize);

  const token = loadSession()?.token ?? '';
  const ws = new WebSocket(consoleUrl(vmId, token));
  let dropped = 0;
  status.textContent = 'Connecting to the serial console…';
  ws.addEventListener('open', () => {
    status.textContent = 'Connected. Press Enter if the screen stays empty.';
    term.focus();
  });
  ws.addEventListener('message', (ev) => {
    if (typeof ev.data !== 'string') return;
    const frame = JSON.parse(ev.data) as { type: string; data?: string; dropped?: number };
    if (frame.type !== 'output' || !frame.data) return;
    term.write(fromBase64(frame.data));
    if (frame.dropped && frame.dropped !== dropped) {
      dropped = frame.dropped;
      status.textContent = `Connected; ${dropped} bytes of output were dropped (the console was too fast).`;
    }
  });
  ws.addEventListener('close', (ev) => {
    status.textContent = ev.code === 1000 || ev.code === 1001
      ? `Console closed${ev.reason ? `: ${ev.reason}` : '.'}`
      : `The console is not available (${ev.code}${ev.reason ? `: ${ev.reason}` : ''}). The VM must be running on an online node; try again.`;
  });
  const input = term.onData((text) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'input', data: toBase64(text) }));
  });
  return () => {
    input.dispose();
    window.removeEventListener('resize', onResize);
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000, 'closed by the user');
    term.dispose();
  };
}
