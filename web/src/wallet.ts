// Sign-In with Ethereum (EIP-4361) through an injected EIP-1193 wallet (MetaMask and the like):
// eth_requestAccounts, the nonce and bindings from GET /api/auth/nonce, personal_sign (EIP-191)
// of the message, POST /api/auth/verify.

import { keccak_256 } from '@noble/hashes/sha3';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { ApiError, get, post, saveSession, type Session } from './api';

interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

declare global {
  interface Window {
    ethereum?: Eip1193Provider;
  }
}

export function hasWallet(): boolean {
  return typeof window.ethereum?.request === 'function';
}

// EIP-55 mixed-case checksum of a 0x address.
export function toChecksumAddress(address: string): string {
  const lower = address.toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{40}$/.test(lower)) throw new Error(`not an Ethereum address: ${address}`);
  const hash = bytesToHex(keccak_256(utf8ToBytes(lower)));
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    out += parseInt(hash[i], 16) >= 8 ? lower[i].toUpperCase() : lower[i];
  }
  return out;
}

interface NonceReply {
  nonce: string;
  expiresAt: string;
  domain: string;
  uri: string;
  chainIds: number[];
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function siweMessage(n: NonceReply, address: string, chainId: number, now: Date): string {
  const scheme = new URL(n.uri).protocol.replace(/:$/, '');
  return [
    `${scheme}://${n.domain} wants you to sign in with your Ethereum account:`,
    address,
    '',
    'Sign in to the DeCloud console.',
    '',
    `URI: ${n.uri}`,
    'Version: 1',
    `Chain ID: ${chainId}`,
    `Nonce: ${n.nonce}`,
    `Issued At: ${rfc3339(now)}`,
    `Expiration Time: ${n.expiresAt}`,
  ].join('\n');
}

function walletError(e: unknown, step: string): Error {
  const err = e as { code?: number; message?: string };
  if (err?.code === 4001) return new Error(`You declined the request in your wallet (${step}). Try again and approve it.`);
  if (err?.code === -32002) return new Error('Your wallet already has a request open: finish or dismiss it in the wallet, then try again.');
  return new Error(`${step} failed in the wallet: ${err?.message ?? String(e)}`);
}

async function chooseChain(wallet: Eip1193Provider, allowed: number[]): Promise<number> {
  let current: number | null = null;
  try {
    current = parseInt(String(await wallet.request({ method: 'eth_chainId' })), 16);
  } catch {
    // wallets without eth_chainId: use the platform's first chain
  }
  if (current !== null && allowed.includes(current)) return current;
  const want = allowed[0];
  try {
    await wallet.request({ method: 'wallet_switchEthereumChain',
                           params: [{ chainId: `0x${want.toString(16)}` }] });
    return want;
  } catch {
    if (current === null) return want;
    throw new Error(`Your wallet is on chain ${current}; switch it to chain ${allowed.join(' or ')} and sign in again.`);
  }
}

// The whole sign-in; `progress` is told each step. Resolves with the stored session.
export async function signIn(progress: (step: string) => void): Promise<Session> {
  const wallet = window.ethereum;
  if (!wallet) throw new Error('No wallet found. Install MetaMask (or another browser wallet) and reload this page.');
  progress('Asking your wallet for an account…');
  let accounts: string[];
  try {
    accounts = (await wallet.request({ method: 'eth_requestAccounts' })) as string[];
  } catch (e) {
    throw walletError(e, 'Connecting');
  }
  if (!accounts?.length) throw new Error('Your wallet shared no account. Unlock it and try again.');
  const address = toChecksumAddress(accounts[0]);
  progress('Getting a sign-in nonce…');
  const nonce = await get<NonceReply>('/api/auth/nonce', { auth: false });
  const chainId = await chooseChain(wallet, nonce.chainIds);
  const message = siweMessage(nonce, address, chainId, new Date());
  progress('Waiting for your signature in the wallet…');
  let signature: string;
  try {
    signature = (await wallet.request({ method: 'personal_sign',
                                        params: [utf8Hex(message), accounts[0]] })) as string;
  } catch (e) {
    throw walletError(e, 'Signing');
  }
  progress('Verifying the signature…');
  const r = await post<Session & { refreshExpiresAt: string }>(
    '/api/auth/verify', { message, signature }, { auth: false });
  const session: Session = { token: r.token, refreshToken: r.refreshToken,
                             walletAddress: r.walletAddress, expiresAt: r.expiresAt };
  saveSession(session);
  return session;
}

export async function signOut(): Promise<void> {
  try {
    await post('/api/auth/logout');
  } catch (e) {
    // an already ended session is signed out all the same
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
  } finally {
    saveSession(null);
  }
}

// personal_sign takes the message as 0x-hex of its UTF-8 bytes (what MetaMask expects).
function utf8Hex(text: string): string {
  return `0x${bytesToHex(utf8ToBytes(text))}`;
}
