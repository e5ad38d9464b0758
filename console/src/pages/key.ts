import type { VNode } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError, api, listAll, type ApiKey, type AuditEntry, type Catalogue, type Group, type Owner, type RequestRecord, type Usage, type Workspace,
} from '../api.js';
import { navigate, useLoad } from '../hooks.js';
import { Alert, CopyButton, Dialog, Field, OnceDialog, StatusBadge, Tabs, formatDate, linesOf, useModal } from '../ui.js';
import { showSecret } from './keys.js';
import { PermissionMatrix, expand, matchingPreset } from './permissions.js';

export const KEY_TABS = [
  'General', 'Permissions', 'Allowlist', 'Denylist', 'IP access restriction', 'Basic authentication', 'Simple authentication',
  'Profile modification allowlist', 'Usage', 'Activity',
] as const;

/** What the settings tabs edit, as the form holds it (lists as one entry per line). */
interface Draft {
  name: string;
  description: string;
  groupId: string;
  ownerId: string;
  expiresAt: string;
  rateLimit: string;
  rateWindow: string;
  quota: string;
  quotaPeriod: string;
  ticks: Set<string>;
  eventAllowlist: string;
  eventDenylist: string;
  ipAllowlist: string;
  profileAttributeAllowlist: string;
  basicAuth: boolean;
  simpleAuth: boolean;
}

/** `2026-01-02T03:04:05.000Z` → the `datetime-local` text of that instant in local time. */
function toLocalInput(iso: string | null): string {
  if (iso === null) return '';
  const d = new Date(iso);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function draftOf(key: ApiKey, catalogue: Catalogue): Draft {
  return {
    name: key.name,
    description: key.description,
    groupId: key.groupId ?? '',
    ownerId: key.ownerId ?? '',
    expiresAt: toLocalInput(key.expiresAt),
    rateLimit: key.rateLimit ? String(key.rateLimit.limit) : '',
    rateWindow: key.rateLimit ? String(key.rateLimit.windowSeconds) : '60',
    quota: key.quota ? String(key.quota.limit) : '',
    quotaPeriod: key.quota?.period ?? 'month',
    ticks: expand(key.permissions, catalogue),
    eventAllowlist: key.eventAllowlist.join('\n'),
    eventDenylist: key.eventDenylist.join('\n'),
    ipAllowlist: key.ipAllowlist.join('\n'),
    profileAttributeAllowlist: key.profileAttributeAllowlist.join('\n'),
    basicAuth: key.basicAuth,
    simpleAuth: key.simpleAuth.enabled,
  };
}

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const num = (s: string): number => (s.trim() === '' ? NaN : Number(s));

/** The PATCH body for what the draft changed (nothing else is sent). */
function patchOf(key: ApiKey, initial: Draft, d: Draft, catalogue: Catalogue): Record<string, unknown> {
  const p: Record<string, unknown> = {};
  if (d.name !== key.name) p.name = d.name;
  if (d.description !== key.description) p.description = d.description;
  if (d.groupId !== (key.groupId ?? '')) p.groupId = d.groupId === '' ? null : d.groupId;
  if (d.ownerId !== (key.ownerId ?? '')) p.ownerId = d.ownerId === '' ? null : d.ownerId;
  if (d.expiresAt !== initial.expiresAt) p.expiresAt = d.expiresAt === '' ? null : new Date(d.expiresAt).toISOString();
  // The window alone means nothing without a limit.
  if (d.rateLimit !== initial.rateLimit || (d.rateLimit.trim() !== '' && d.rateWindow !== initial.rateWindow)) {
    p.rateLimit = d.rateLimit.trim() === '' ? null : { limit: num(d.rateLimit), windowSeconds: num(d.rateWindow) };
  }
  if (d.quota !== initial.quota || (d.quota.trim() !== '' && d.quotaPeriod !== initial.quotaPeriod)) {
    p.quota = d.quota.trim() === '' ? null : { limit: num(d.quota), period: d.quotaPeriod };
  }
  const ticksChanged = d.ticks.size !== initial.ticks.size || [...d.ticks].some((t) => !initial.ticks.has(t));
  if (ticksChanged) {
    // A preset keeps its patterns (`*.read` covers routes added later); other ticks are sent one by one.
    const preset = matchingPreset(d.ticks, catalogue);
    if (preset !== null) p.preset = preset;
    else p.permissions = [...d.ticks].sort();
  }
  for (const f of ['eventAllowlist', 'eventDenylist', 'ipAllowlist', 'profileAttributeAllowlist'] as const) {
    const lines = linesOf(d[f]);
    if (!sameList(lines, key[f])) p[f] = lines;
  }
  if (d.basicAuth !== key.basicAuth) p.basicAuth = d.basicAuth;
  if (d.simpleAuth !== key.simpleAuth.enabled) p.simpleAuth = { enabled: d.simpleAuth };
  return p;
}

/** `fresh`, with each field of `current` that was edited after `sent` went out. */
function rebase(fresh: Draft, sent: Draft, current: Draft): Draft {
  const out: Draft = { ...fresh };
  for (const f of Object.keys(fresh) as Array<keyof Draft>) {
    const a = sent[f];
    const b = current[f];
    const same = a instanceof Set && b instanceof Set ? a.size === b.size && [...a].every((t) => b.has(t)) : a === b;
    if (!same) (out as unknown as Record<string, unknown>)[f] = b;
  }
  return out;
}

/** Which tab shows each field the API may name in an error. */
const TAB_OF: Readonly<Record<string, string>> = {
  name: 'General', description: 'General', groupId: 'General', ownerId: 'General', expiresAt: 'General', rateLimit: 'General', quota: 'General',
  permissions: 'Permissions', preset: 'Permissions', eventAllowlist: 'Allowlist', eventDenylist: 'Denylist', ipAllowlist: 'IP access restriction',
  basicAuth: 'Basic authentication', simpleAuth: 'Simple authentication', profileAttributeAllowlist: 'Profile modification allowlist',
};

export function KeyPage(props: { id: string }): VNode {
  const modal = useModal();
  const [tab, setTab] = useState<string>('General');
  const catalogue = useLoad(async () => (await api<Catalogue>('GET', '/v1/permissions')).data, []);
  const groups = useLoad(() => listAll<Group>('/v1/groups'), []);
  const owners = useLoad(() => listAll<Owner>('/v1/owners'), []);
  const workspaces = useLoad(() => listAll<Workspace>('/v1/workspaces'), []);
  const loaded = useLoad(() => api<ApiKey>('GET', `/v1/keys/${encodeURIComponent(props.id)}`), [props.id]);
  const [draft, setDraft] = useState<{ initial: Draft; current: Draft; version: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [conflict, setConflict] = useState(false);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const key = loaded.data?.data;
  const etag = loaded.data?.etag ?? null;
  /** The draft as it was when our last write went out: edits made after it survive the reload that follows. */
  const sent = useRef<Draft | null>(null);
  useEffect(() => {
    if (key && catalogue.data && (draft === null || draft.version !== key.version)) {
      const initial = draftOf(key, catalogue.data);
      // After our own write, what it sent is now the key's state and nothing of it stays pending;
      // a field edited while the write was under way stays as edited. A reload discards the draft.
      const before = draft === null ? null : sent.current;
      sent.current = null;
      setDraft({ initial, current: before === null || draft === null ? initial : rebase(initial, before, draft.current), version: key.version });
    }
  }, [key, catalogue.data]);

  if (loaded.error && !key) {
    return html`<section><h1>API key</h1><${Alert} error=${loaded.error} /><p><a href="#/keys">Back to the keys</a></p></section>`;
  }
  if (!key || !catalogue.data || !draft) return html`<section><h1>API key</h1><p role="status">Loading…</p></section>`;
  const cat = catalogue.data;
  const d = draft.current;
  const patch = patchOf(key, draft.initial, d, cat);
  const dirty = Object.keys(patch).length > 0;
  const update = (changes: Partial<Draft>): void => setDraft({ ...draft, current: { ...d, ...changes } });
  const apiError = error instanceof ApiError ? error : null;
  const about = (field: string): string | null => {
    const text = apiError?.about(field) ?? null;
    // A list's entries are lines in the form: `[2]: …` reads `line 3: …`.
    return text === null ? null : text.replace(/\[(\d+)\]/g, (_m, i: string) => `line ${Number(i) + 1}`);
  };
  const fieldTabs = apiError ? [...new Set([...apiError.fields.keys()].map((f) => TAB_OF[f]).filter(Boolean))] : [];

  const fail = (err: unknown): void => {
    if (err instanceof ApiError && err.status === 412) setConflict(true);
    else setError(err);
  };
  const write = async (method: string, path: string, body: unknown): Promise<ApiKey & { key?: ApiKey; secret?: string } | null> => {
    setBusy(true);
    setError(null);
    setSaved(null);
    sent.current = d;
    try {
      const res = await api<ApiKey & { key?: ApiKey; secret?: string }>(method, path, body, { ifMatch: etag });
      // The answer is the key as written, with its ETag: shown at once, so no stale state (and
      // no stale ETag) is on the page between the write and a reload. A salt is not kept.
      const written = res.data.key ?? res.data;
      const { salt: _salt, ...simpleAuth } = written.simpleAuth;
      loaded.set({ data: { ...written, simpleAuth }, etag: res.etag, status: res.status });
      return res.data;
    } catch (err) {
      sent.current = null;
      fail(err);
      return null;
    } finally {
      setBusy(false);
    }
  };
  const path = `/v1/keys/${encodeURIComponent(key.id)}`;

  const apply = async (): Promise<void> => {
    const result = await write('PATCH', path, patch);
    if (!result) return;
    const salt = result.simpleAuth.salt;
    setSaved('Settings applied. Every gateway enforces them within the propagation delay (see Nodes).');
    if (salt) {
      modal.open((close) => html`<${OnceDialog} title="Copy this salt now" fieldLabel="Salt" value=${salt} onDone=${close}
        note="The simple-authentication salt is shown this once. Apps sign identities with it: hex(HMAC-SHA256(salt, identity))." />`);
    }
  };
  const enabled = key.status !== 'disabled';
  const toggleEnabled = async (): Promise<void> => {
    const result = await write('PATCH', path, { enabled: !enabled });
    if (result) {
      setSaved(result.status === 'disabled' ? 'Key disabled: gateways refuse it (403 KEY_DISABLED).' : 'Key enabled.');
    }
  };
  const openRotate = (): void => modal.open((close) => html`<${RotateDialog} keyName=${key.name} onClose=${close} onRotate=${async (grace: string) => {
    const result = await write('POST', `${path}/rotate`, grace === '' ? {} : { gracePeriodSeconds: Number(grace) });
    close();
    if (result?.secret) {
      showSecret(modal, result.secret);
    }
  }} />`);
  const openDelete = (): void => modal.open((close) => html`<${DeleteDialog} keyName=${key.name} prefix=${key.prefix} onClose=${close} onDelete=${async () => {
    setBusy(true);
    try {
      await api('DELETE', path, undefined, { ifMatch: etag });
      close();
      navigate('/keys');
    } catch (err) {
      close();
      fail(err);
    } finally {
      setBusy(false);
    }
  }} />`);

  const lockReason = 'these permissions were locked when the key was created, so they cannot be changed (unlock with PATCH {"permissionsLocked": false} first).';
  const listTab = (field: 'eventAllowlist' | 'eventDenylist' | 'ipAllowlist' | 'profileAttributeAllowlist', label: string, hint: string, note?: VNode | null) =>
    html`<div>${note ?? null}<${Field} label=${label} hint=${hint} error=${about(field)}>${(id: string, described?: string) =>
      html`<textarea id=${id} rows="6" spellcheck=${false} value=${d[field]} aria-describedby=${described} aria-invalid=${about(field) ? 'true' : undefined}
        onInput=${(e: Event) => update({ [field]: (e.currentTarget as HTMLTextAreaElement).value })} />`}<//></div>`;

  const panel = (): VNode => {
    switch (tab) {
      case 'General': return html`<${GeneralTab} keyValue=${key} draft=${d} update=${update} about=${about} groups=${groups.data ?? []} owners=${owners.data ?? []}
        workspaceName=${workspaces.data?.find((w) => w.id === key.workspaceId)?.name ?? null} />`;
      case 'Permissions': return html`<div>
        <${PermissionMatrix} catalogue=${cat} ticks=${d.ticks} locked=${key.permissionsLocked} lockReason=${lockReason}
          onChange=${(ticks: Set<string>) => update({ ticks })} onPreset=${(name: string) => update({ ticks: expand(cat.presets[name] ?? [], cat) })} />
        ${about('permissions') || about('preset') ? html`<p class="error">${about('permissions') ?? about('preset')}</p>` : null}
        ${key.ownerId ? html`<p class="hint">The key's owner limits it too: its effective permissions are these intersected with the owner's.</p>` : null}
      </div>`;
      case 'Allowlist': return listTab('eventAllowlist', 'Allowed events', 'One event name per line, or a prefix ending in * (transaction.*). Empty: every event not denied.');
      case 'Denylist': return listTab('eventDenylist', 'Denied events', 'One event name per line, or a prefix ending in *. The denylist always wins over the allowlist.');
      case 'IP access restriction': return listTab('ipAllowlist', 'Allowed IP addresses and CIDRs', 'One per line (10.0.0.0/8, 2001:db8::/32, 203.0.113.7). Empty: any address.');
      case 'Profile modification allowlist': return listTab('profileAttributeAllowlist', 'Attributes that may be modified',
        'One top-level profile attribute per line (firstName, tags). Empty: any attribute.');
      case 'Basic authentication': return html`<${BasicAuthTab} keyValue=${key} draft=${d} update=${update} about=${about} />`;
      case 'Simple authentication': return html`<${SimpleAuthTab} keyValue=${key} draft=${d} update=${update} about=${about} />`;
      case 'Usage': return html`<${UsageTab} id=${key.id} />`;
      default: return html`<${ActivityTab} id=${key.id} />`;
    }
  };
  const readOnlyTab = tab === 'Usage' || tab === 'Activity';

  return html`<section aria-labelledby="key-heading" class="key">
    <p><a href="#/keys">← API keys</a></p>
    <div class="page-head">
      <h1 id="key-heading">${key.name}</h1>
      <code class="prefix">${key.prefix}…</code> <${StatusBadge} status=${key.status} />${key.rotationDue ? html` <span class="badge due">rotation due</span>` : null}
      <div class="grow"></div>
      <span class="switch-field">
        <button type="button" role="switch" id="key-enabled" aria-checked=${enabled ? 'true' : 'false'} aria-labelledby="key-enabled-label"
          disabled=${busy} onClick=${toggleEnabled}><span class="knob" aria-hidden="true"></span></button>
        <span id="key-enabled-label">Enabled</span>
      </span>
      <button type="button" onClick=${openRotate} disabled=${busy}>Rotate</button>
      <button type="button" class="danger" onClick=${openDelete} disabled=${busy}>Delete</button>
    </div>
    <p class="note">Changes take effect on every gateway after a propagation delay: at once on this node, within the
      configured bound (propagation.maxStalenessMs) everywhere. The <a href="#/nodes">Nodes</a> page shows each gateway's applied store version.</p>
    ${conflict ? html`<div class="alert" role="alert">Someone else changed this key since it was loaded; nothing was saved.
      <button type="button" onClick=${() => { setConflict(false); setDraft(null); loaded.reload(); }}>Reload the key</button></div>` : null}
    ${error ? html`<div class="alert" role="alert">${(error as Error).message}${fieldTabs.length > 0 ? ` (see ${fieldTabs.join(', ')})` : ''}</div>` : null}
    ${saved ? html`<p class="saved" role="status">${saved}</p>` : html`<p class="saved" role="status"></p>`}
    <${Tabs} tabs=${KEY_TABS} selected=${tab} onSelect=${setTab} label="Key settings" panel=${panel} />
    ${readOnlyTab ? null : html`<div class="actions">
      <button type="button" class="primary" onClick=${apply} disabled=${busy || !dirty}>Apply settings</button>
      <button type="button" onClick=${() => { setError(null); setDraft({ ...draft, current: draft.initial }); }} disabled=${!dirty}>Discard changes</button>
      <span class="muted">${dirty ? `Changed: ${Object.keys(patch).join(', ')}` : 'No pending change'}</span>
    </div>`}
  </section>`;
}

interface TabProps { keyValue: ApiKey; draft: Draft; update: (c: Partial<Draft>) => void; about: (f: string) => string | null }

function GeneralTab(props: TabProps & { groups: Group[]; owners: Owner[]; workspaceName: string | null }): VNode {
  const { keyValue: key, draft: d, update, about } = props;
  const text = (f: 'name' | 'description' | 'expiresAt' | 'rateLimit' | 'rateWindow' | 'quota') => (e: Event): void =>
    update({ [f]: (e.currentTarget as HTMLInputElement).value });
  return html`<div class="general">
    <dl class="facts">
      <dt>ID</dt><dd><code>${key.id}</code></dd>
      <dt>Prefix</dt><dd><code>${key.prefix}</code></dd>
      <dt>Type</dt><dd>${key.type}</dd>
      <dt>Environment</dt><dd>${key.environment}</dd>
      <dt>Workspace</dt><dd>${props.workspaceName ? html`${props.workspaceName} ` : null}<code>${key.workspaceId}</code></dd>
      <dt>Created</dt><dd>${formatDate(key.createdAt)}</dd>
      <dt>Last used</dt><dd>${formatDate(key.lastUsedAt)}</dd>
      <dt>Version</dt><dd>${key.version}</dd>
    </dl>
    <${Field} label="Name" error=${about('name')}>${(id: string, ds?: string) =>
      html`<input id=${id} value=${d.name} maxLength=${200} aria-describedby=${ds} aria-invalid=${about('name') ? 'true' : undefined} onInput=${text('name')} />`}<//>
    <${Field} label="Description" error=${about('description')}>${(id: string, ds?: string) =>
      html`<textarea id=${id} rows="2" value=${d.description} aria-describedby=${ds} onInput=${text('description')} />`}<//>
    <div class="row">
      <${Field} label="Group" error=${about('groupId')}>${(id: string, ds?: string) =>
        html`<select id=${id} value=${d.groupId} aria-describedby=${ds} onChange=${(e: Event) => update({ groupId: (e.currentTarget as HTMLSelectElement).value })}>
          <option value="">No group</option>${props.groups.map((g) => html`<option value=${g.id}>${g.name}</option>`)}</select>`}<//>
      <${Field} label="Owner" error=${about('ownerId')}>${(id: string, ds?: string) =>
        html`<select id=${id} value=${d.ownerId} aria-describedby=${ds} onChange=${(e: Event) => update({ ownerId: (e.currentTarget as HTMLSelectElement).value })}>
          <option value="">No owner</option>${props.owners.map((o) => html`<option value=${o.id}>${o.name}${o.status === 'disabled' ? ' (disabled)' : ''}</option>`)}</select>`}<//>
    </div>
    <${Field} label="Expires" hint="Local time; empty: never expires." error=${about('expiresAt')}>${(id: string, ds?: string) =>
      html`<input id=${id} type="datetime-local" value=${d.expiresAt} aria-describedby=${ds} onInput=${text('expiresAt')} />`}<//>
    <div class="row">
      <${Field} label="Rate limit (requests)" hint="Empty: no rate limit." error=${about('rateLimit')}>${(id: string, ds?: string) =>
        html`<input id=${id} type="number" min="0" value=${d.rateLimit} aria-describedby=${ds} onInput=${text('rateLimit')} />`}<//>
      <${Field} label="Rate limit window (seconds)">${(id: string) =>
        html`<input id=${id} type="number" min="1" value=${d.rateWindow} onInput=${text('rateWindow')} />`}<//>
    </div>
    <div class="row">
      <${Field} label="Quota (requests)" hint="Empty: no quota." error=${about('quota')}>${(id: string, ds?: string) =>
        html`<input id=${id} type="number" min="0" value=${d.quota} aria-describedby=${ds} onInput=${text('quota')} />`}<//>
      <${Field} label="Quota period">${(id: string) =>
        html`<select id=${id} value=${d.quotaPeriod} onChange=${(e: Event) => update({ quotaPeriod: (e.currentTarget as HTMLSelectElement).value })}>
          <option value="day">day (UTC)</option><option value="month">month (UTC)</option></select>`}<//>
    </div>
  </div>`;
}

function BasicAuthTab(props: TabProps): VNode {
  const { keyValue: key, draft: d, update, about } = props;
  const allowed = key.type === 'workspace';
  return html`<div>
    <div class="check">
      <input type="checkbox" id="basic-auth" checked=${d.basicAuth} disabled=${!allowed} aria-describedby="basic-auth-why"
        onChange=${(e: Event) => update({ basicAuth: (e.currentTarget as HTMLInputElement).checked })} />
      <label for="basic-auth">Allow Basic authentication</label>
    </div>
    <p class="hint" id="basic-auth-why">${allowed
      ? 'Clients send Authorization: Basic base64(<workspace GUID>:<secret>); the GUID must be this key\'s workspace.'
      : 'Only workspace keys may use Basic authentication; this is a profile key.'}</p>
    ${about('basicAuth') ? html`<p class="error">${about('basicAuth')}</p>` : null}
    <${Field} label="Workspace GUID">${(id: string) => html`<input id=${id} readonly value=${key.workspaceId} class="secret" />`}<//>
    <${CopyButton} text=${key.workspaceId} name="Copy workspace GUID" />
  </div>`;
}

function SimpleAuthTab(props: TabProps): VNode {
  const { keyValue: key, draft: d, update, about } = props;
  const allowed = key.type === 'profile';
  return html`<div>
    <div class="check">
      <input type="checkbox" id="simple-auth" checked=${d.simpleAuth} disabled=${!allowed} aria-describedby="simple-auth-why"
        onChange=${(e: Event) => update({ simpleAuth: (e.currentTarget as HTMLInputElement).checked })} />
      <label for="simple-auth">Allow simple authentication</label>
    </div>
    <p class="hint" id="simple-auth-why">${allowed
      ? 'Enabling it makes a salt, shown once after Apply settings. An app then mints a profile token with POST /auth/token {apiKey, identity, signature = hex(HMAC-SHA256(salt, identity value))}.'
      : 'Only profile keys may use simple authentication; this is a workspace key.'}</p>
    ${key.simpleAuth.enabled ? html`<p>Simple authentication is on. The salt was shown once when it was enabled; to get a new one, turn it off, apply, then on again.</p>` : null}
    ${about('simpleAuth') ? html`<p class="error">${about('simpleAuth')}</p>` : null}
  </div>`;
}

function UsageTab(props: { id: string }): VNode {
  const usage = useLoad(async () => (await api<Usage>('GET', `/v1/keys/${encodeURIComponent(props.id)}/usage`)).data, [props.id]);
  const u = usage.data;
  return html`<div>
    <${Alert} error=${usage.error} />
    <button type="button" onClick=${usage.reload}>Refresh usage</button>
    ${u ? html`<dl class="facts">
      <dt>Requests</dt><dd>${u.requests.total}</dd>
      <dt>Last used</dt><dd>${formatDate(u.lastUsedAt)}</dd>
      <dt>Rate limit</dt><dd>${u.rateLimit ? `${u.rateLimit.remaining} of ${u.rateLimit.limit} left in ${u.rateLimit.windowSeconds} s (resets in ${u.rateLimit.resetSeconds} s)` : 'none'}</dd>
      <dt>Quota</dt><dd>${u.quota ? `${u.quota.used} of ${u.quota.limit} used this ${u.quota.period} (${u.quota.remaining} left, resets ${formatDate(u.quota.resetsAt)})` : 'none'}</dd>
    </dl>
    <table><caption>Requests by outcome</caption>
      <thead><tr><th scope="col">Outcome</th><th scope="col">Requests</th></tr></thead>
      <tbody>${Object.entries(u.requests.byOutcome).sort(([, a], [, b]) => b - a).map(([o, n]) => html`<tr><td>${o}</td><td>${n}</td></tr>`)}
        ${Object.keys(u.requests.byOutcome).length === 0 ? html`<tr><td colspan="2">No request yet.</td></tr>` : null}</tbody>
    </table>` : html`<p role="status">Loading usage…</p>`}
  </div>`;
}

/** Top-level fields an audit entry changed (never a secret: the API keeps them out). */
export function changedFields(before: unknown, after: unknown): string {
  if (before === null || typeof before !== 'object') return '';
  if (after === null || typeof after !== 'object') return '';
  const b = before as Record<string, unknown>;
  const a = after as Record<string, unknown>;
  return [...new Set([...Object.keys(b), ...Object.keys(a)])]
    .filter((k) => k !== 'updatedAt' && k !== 'version' && JSON.stringify(b[k]) !== JSON.stringify(a[k])).join(', ');
}

function ActivityTab(props: { id: string }): VNode {
  const audit = useLoad(async () => (await api<{ items: AuditEntry[] }>('GET', `/v1/audit?keyId=${encodeURIComponent(props.id)}&limit=100`)).data.items, [props.id]);
  // Request records, where this admin API has them; an API without the endpoint answers 404 NOT_FOUND.
  const requests = useLoad(async () => {
    try {
      return (await api<{ items: RequestRecord[] }>('GET', `/v1/keys/${encodeURIComponent(props.id)}/activity?limit=50`)).data.items;
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'NOT_FOUND' || err.status === 405)) return null;
      throw err;
    }
  }, [props.id]);
  return html`<div>
    <${Alert} error=${audit.error} />
    <table><caption>Changes to this key (audit log)</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Changed</th></tr></thead>
      <tbody>${(audit.data ?? []).map((e) => html`<tr><td>${formatDate(e.at)}</td><td>${e.actor.name}</td><td>${e.action}</td>
        <td>${changedFields(e.before, e.after)}</td></tr>`)}</tbody>
    </table>
    ${requests.data ? html`<table><caption>Recent requests</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Request</th><th scope="col">Status</th><th scope="col">Outcome</th><th scope="col">Client IP</th></tr></thead>
      <tbody>${requests.data.map((r) => html`<tr><td>${formatDate(r.at)}</td><td>${r.method} ${r.route}</td><td>${r.status}</td><td>${r.outcome}</td><td>${r.clientIp ?? '—'}</td></tr>`)}</tbody>
    </table>` : null}
  </div>`;
}

function RotateDialog(props: { keyName: string; onClose: () => void; onRotate: (grace: string) => Promise<void> }): VNode {
  const [grace, setGrace] = useState('');
  const [busy, setBusy] = useState(false);
  return html`<${Dialog} title=${`Rotate key “${props.keyName}”`} onClose=${props.onClose}>
    <p>A new secret is made and shown once. The old secret keeps working for the grace period, so clients can switch over.</p>
    <${Field} label="Grace period">${(id: string) => html`<select id=${id} value=${grace} onChange=${(e: Event) => setGrace((e.currentTarget as HTMLSelectElement).value)}>
      <option value="">Server default (keys.rotationGraceSeconds)</option>
      <option value="0">None: the old secret stops now</option>
      <option value="3600">1 hour</option><option value="86400">24 hours</option><option value="604800">7 days</option>
    </select>`}<//>
    <div class="actions end">
      <button type="button" onClick=${props.onClose}>Cancel</button>
      <button type="button" class="primary" disabled=${busy} onClick=${async () => { setBusy(true); await props.onRotate(grace); }}>Rotate</button>
    </div>
  <//>`;
}

function DeleteDialog(props: { keyName: string; prefix: string; onClose: () => void; onDelete: () => Promise<void> }): VNode {
  const [busy, setBusy] = useState(false);
  return html`<${Dialog} title=${`Delete key “${props.keyName}”?`} onClose=${props.onClose}>
    <p>The key <strong>${props.keyName}</strong> (<code>${props.prefix}…</code>) stops working on every gateway. This cannot be undone.</p>
    <div class="actions end">
      <button type="button" onClick=${props.onClose}>Cancel</button>
      <button type="button" class="danger" disabled=${busy} onClick=${async () => { setBusy(true); await props.onDelete(); }}>Delete</button>
    </div>
  <//>`;
}
