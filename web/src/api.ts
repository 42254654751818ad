// The orchestrator's REST API as the console uses it: bearer tokens kept for this browser tab,
// one transparent refresh on 401, and problem+json errors turned into messages that say what to do.

export interface Session {
  token: string;
  refreshToken: string;
  walletAddress: string;
  expiresAt: string;
}

const kSessionKey = 'decloud.session';

export function loadSession(): Session | null {
  const raw = sessionStorage.getItem(kSessionKey);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Session;
  } catch {
    return null;
  }
}

export function saveSession(session: Session | null): void {
  if (session) sessionStorage.setItem(kSessionKey, JSON.stringify(session));
  else sessionStorage.removeItem(kSessionKey);
}

// An API failure: the server's problem details plus a hint for the person in front of it.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly requestId: string,
    readonly hint: string,
  ) {
    super(detail ? `${title}: ${detail}` : title);
  }
}

function hintFor(status: number, retryAfter: string | null): string {
  switch (status) {
    case 0:
      return 'The orchestrator cannot be reached. Check your connection and try again.';
    case 400:
      return 'Correct the value named above and try again.';
    case 401:
      return 'Your session has ended. Sign in again with your wallet.';
    case 402:
      return 'Your balance is zero. Deposit USDC (Billing shows where), wait for the confirmations it names, then try again.';
    case 403:
      return 'Your wallet may not do this (operator or admin only).';
    case 404:
      return 'It does not exist (any more) or belongs to another wallet. Refresh the list.';
    case 409:
      return 'Another change is under way or the state does not allow it. Wait for it to finish, then retry.';
    case 422:
      return 'It cannot be done as asked; the detail above says why (for a VM: ask for fewer cores, memory or disk, another tier, or pick a node with free capacity).';
    case 429:
      return `Too many attempts. Wait ${retryAfter ?? 'a minute'} seconds and try again.`;
    case 502:
    case 503:
    case 504:
      return 'The service is busy or starting. Try again in a few seconds.';
    default:
      return status >= 500
        ? 'The server failed. Try again; if it persists, report the request id.'
        : 'Check the request and try again.';
  }
}

let onSessionLost: (() => void) | null = null;
export function setSessionLostHandler(handler: () => void): void {
  onSessionLost = handler;
}

async function send(method: string, path: string, body: unknown, token: string | null,
                    extraHeaders: Record<string, string>): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json', ...extraHeaders };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'Network error', String(e), '', hintFor(0, null));
  }
}

async function toError(resp: Response): Promise<ApiError> {
  let title = resp.statusText || `HTTP ${resp.status}`;
  let detail = '';
  let requestId = resp.headers.get('X-Request-Id') ?? '';
  try {
    const p = (await resp.json()) as { title?: string; detail?: string; requestId?: string };
    title = p.title ?? title;
    detail = p.detail ?? '';
    requestId = p.requestId ?? requestId;
  } catch {
    // not problem+json (a proxy's page): keep the status line
  }
  return new ApiError(resp.status, title, detail, requestId,
                      hintFor(resp.status, resp.headers.get('Retry-After')));
}

let refreshing: Promise<boolean> | null = null;

async function refresh(): Promise<boolean> {
  const session = loadSession();
  if (!session) return false;
  const resp = await send('POST', '/api/auth/refresh', { refreshToken: session.refreshToken },
                          null, {});
  if (!resp.ok) return false;
  const r = (await resp.json()) as { token: string; expiresAt: string };
  saveSession({ ...session, token: r.token, expiresAt: r.expiresAt });
  return true;
}

export interface RequestOptions {
  auth?: boolean;  // default true: send the bearer token
  headers?: Record<string, string>;
}

// JSON in, JSON out; throws ApiError. A 401 refreshes the access token once and retries.
export async function api<T>(method: string, path: string, body?: unknown,
                             options: RequestOptions = {}): Promise<T> {
  const auth = options.auth ?? true;
  const headers = options.headers ?? {};
  let resp = await send(method, path, body, auth ? loadSession()?.token ?? null : null, headers);
  if (resp.status === 401 && auth && loadSession()) {
    refreshing ??= refresh().finally(() => {
      refreshing = null;
    });
    if (await refreshing) {
      resp = await send(method, path, body, loadSession()?.token ?? null, headers);
    }
    if (resp.status === 401) {
      saveSession(null);
      onSessionLost?.();
    }
  }
  if (!resp.ok) throw await toError(resp);
  if (resp.status === 204) return undefined as T;
  return (await resp.json()) as T;
}

export const get = <T>(path: string, options?: RequestOptions) =>
  api<T>('GET', path, undefined, options);
export const post = <T>(path: string, body?: unknown, options?: RequestOptions) =>
  api<T>('POST', path, body, options);
export const put = <T>(path: string, body?: unknown) => api<T>('PUT', path, body);
export const del = <T>(path: string) => api<T>('DELETE', path);

// A VM port published on its node's relay (GET /api/vms/{id}/ports).
export interface PublicPort {
  vmPort: number;
  protocol: 'tcp' | 'udp';
  publicUrl: string;
}

// ---- the shapes the console reads (proto/openapi.yaml) ----

export interface MarketNode {
  id: string;
  displayName: string;
  description: string;
  region: string;
  tags: string[];
  pricePerPointMicroUsdc: string;
  computePoints: number;
  cpuCores: number;
  memoryMib: number;
  diskGib: number;
  gpus: { vendor: string; model: string }[];
  behindCgnat: boolean;
  featured: boolean;
  reputation: { uptime30dPercent: number; vmsHosted: number; vmsCompleted: number;
                reviewCount: number; averageRating: number | null };
  availability: { online: boolean; lastHeartbeatAt: string | null; freePoints: number;
                  freeMemoryMib: number; freeDiskGib: number; freeGpus: number };
  hourlyPriceUsdc: string | null;
}

export interface TemplateParam {
  name: string;
  type: 'string' | 'integer' | 'boolean';
  description: string;
  default?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  secret?: boolean;
}

export interface Template {
  id: string;
  name: string;
  description: string;
  image: string;
  minimum: { cpuCores: number; memoryMib: number; diskGib: number };
  ports: { port: number; name: string; protocol: string }[];
  parameters: TemplateParam[];
  source?: 'seed' | 'community';
  author?: string;
  deprecated?: boolean;
}

export interface Vm {
  id: string;
  name: string;
  state: string;
  stateReason: string;
  nodeId: string | null;
  nodeOffline: boolean;
  bootLogKept: boolean;  // GET /api/vms/{id}/boot-log has the console of its last stop by itself
  cpuCores: number;
  memoryMib: number;
  diskGib: number;
  tier: string;
  image: string;
  template: string | null;
  templateParams: Record<string, unknown>;
  hourlyRateUsdc: string;
  addresses: string[];
  createdAt: string;
  updatedAt: string;
}

export interface Placement {
  nodeId: string;
  computePoints: number;
  hourlyRateUsdc: string;
  score: number;
}

export interface Quote {
  placement: Placement | null;
  candidates: Placement[];
  rejections: { nodeId: string; reason: string; detail: string }[];
  explanation?: string;
  behindCgnat?: boolean;
  relay?: { required: boolean; relayNodeId: string | null; endpoint: string | null; note: string } | null;
  node?: MarketNode | null;
}

export interface NodeInfo {
  id: string;
  status: 'online' | 'offline';
  operatorWallet: string;
  region: string;
  tags: string[];
  reportedIp: string;
  observedIp: string;
  computePoints: number;
  pricePerPointMicroUsdc: string;
  agentVersion: string;
  behindCgnat: boolean;
  requiresRelay: boolean;
  cgnatReason: string;
  lastHeartbeatAt: string | null;
  uptime30dPercent: number;
  usage?: { cpuPercent: number; memoryUsedBytes: number; storageUsedBytes: number; runningVms: number };
  resources: { cpuModel: string; cpuCores: number; memoryBytes: number; kvmAvailable: boolean };
  heartbeats?: { receivedToday: number; missedToday: number; missedLast30Days: number };
}

export interface RelayAssignment {
  id: string;
  cgnatNodeId: string;
  relayNodeId: string;
  role: string;
  state: string;
  stateReason: string;
  relayEndpoint: string;
  tunnelNetwork: string;
  stateChangedAt: string;
  tunnelRttMs: number | null;  // round trip over the tunnel, measured by the agents
}

export interface Balance {
  currency: string;
  balance: string;
  runningHourlyCost: string;
  lowBalance: boolean;
  nodeEarnings: string;
  relayEarnings: string;
  payoutsInFlight: string;
  events: { id: number; kind: string; at: string; detail: Record<string, unknown> }[];
}

export interface Transaction {
  id: string;
  kind: string;
  createdAt: string;
  currency: string;
  balanceChange: string;
  entries: { account: string; direction: string; amount: string }[];
  details: Record<string, unknown>;
}

export interface DepositInfo {
  currency: string;
  decimals: number;
  chainId: number;
  tokenAddress: string;
  depositAddress: string;
  confirmations: number;
}
