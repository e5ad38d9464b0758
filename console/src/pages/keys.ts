import type { VNode } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, listAll, type ApiKey, type Catalogue, type Group, type Workspace } from '../api.js';
import { navigate, useLoad } from '../hooks.js';
import { Alert, Dialog, Field, OnceDialog, StatusBadge, formatDate, useModal } from '../ui.js';

/** Keys per page of the list; "Load more keys" asks for the next. */
const PAGE = 100;

interface Filters { q: string; type: string; environment: string; status: string; rotationDue: string; workspaceId: string }

function keysQuery(f: Filters, cursor: string | null): string {
  const p = new URLSearchParams({ limit: String(PAGE) });
  for (const [k, v] of Object.entries(f)) if (v !== '') p.set(k, v);
  if (cursor !== null) p.set('cursor', cursor);
  return `/v1/keys?${p.toString()}`;
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

/** The once-only secret of a created or rotated key; after Done it is gone from the page. */
export function showSecret(modal: ReturnType<typeof useModal>, secret: string, after?: () => void): void {
  modal.open((close) => html`<${OnceDialog} title="Copy this key now" fieldLabel="Secret" value=${secret} qrAlt="QR code of the key"
    note="This is the only time the secret is shown: keygate stores only a hash of it. Copy it into your secret store now."
    onDone=${() => { close(); after?.(); }} />`);
}

function Select(props: { label: string; value: string; onChange: (v: string) => void; options: ReadonlyArray<[string, string]> }): VNode {
  return html`<label class="filter">${props.label}
    <select value=${props.value} onChange=${(e: Event) => props.onChange((e.currentTarget as HTMLSelectElement).value)}>
      ${props.options.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
    </select>
  </label>`;
}

export function KeysPage(): VNode {
  const modal = useModal();
  const [filters, setFilters] = useState<Filters>({ q: '', type: '', environment: '', status: '', rotationDue: '', workspaceId: '' });
  const q = useDebounced(filters.q, 200);
  const query = { ...filters, q };
  const workspaces = useLoad(() => listAll<Workspace>('/v1/workspaces'), []);
  const groups = useLoad(() => listAll<Group>('/v1/groups'), []);
  const [extra, setExtra] = useState<{ items: ApiKey[]; cursor: string | null } | null>(null);
  const keys = useLoad(async () => {
    setExtra(null);
    return (await api<{ items: ApiKey[]; nextCursor?: string | null }>('GET', keysQuery(query, null))).data;
  }, [q, filters.type, filters.environment, filters.status, filters.rotationDue, filters.workspaceId]);

  const set = (k: keyof Filters) => (v: string): void => setFilters((f) => ({ ...f, [k]: v }));
  const all = [...(keys.data?.items ?? []), ...(extra?.items ?? [])];
  const cursor = extra ? extra.cursor : (keys.data?.nextCursor ?? null);
  const more = async (): Promise<void> => {
    const { data } = await api<{ items: ApiKey[]; nextCursor?: string | null }>('GET', keysQuery(query, cursor));
    setExtra({ items: [...(extra?.items ?? []), ...data.items], cursor: data.nextCursor ?? null });
  };

  const groupName = new Map((groups.data ?? []).map((g) => [g.id, g.name]));
  const byGroup = new Map<string, ApiKey[]>();
  for (const k of all) {
    const g = k.groupId ?? '';
    byGroup.set(g, [...(byGroup.get(g) ?? []), k]);
  }
  const sections = [...byGroup.entries()].sort(([a], [b]) => (a === '' ? 1 : b === '' ? -1 : (groupName.get(a) ?? a).localeCompare(groupName.get(b) ?? b)));

  const openAdd = (): void => {
    modal.open((close) => html`<${AddKeyDialog} workspaces=${workspaces.data ?? []} groups=${groups.data ?? []} onClose=${close}
      onCreated=${(key: ApiKey, secret: string) => {
        keys.reload();
        showSecret(modal, secret, () => navigate(`/keys/${encodeURIComponent(key.id)}`));
      }} />`);
  };

  return html`<section aria-labelledby="keys-heading">
    <div class="page-head">
      <h1 id="keys-heading">API keys</h1>
      <button type="button" class="primary" onClick=${openAdd}>Add API key</button>
    </div>
    <div class="toolbar" role="search">
      <label class="filter grow">Search keys
        <input type="search" value=${filters.q} placeholder="name, description or prefix"
          onInput=${(e: Event) => set('q')((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <${Select} label="Filter by type" value=${filters.type} onChange=${set('type')} options=${[['', 'Any type'], ['workspace', 'workspace'], ['profile', 'profile']]} />
      <${Select} label="Filter by environment" value=${filters.environment} onChange=${set('environment')} options=${[['', 'Any environment'], ['live', 'live'], ['test', 'test']]} />
      <${Select} label="Filter by status" value=${filters.status} onChange=${set('status')}
        options=${[['', 'Any status'], ['active', 'active'], ['disabled', 'disabled'], ['suspended', 'suspended'], ['expired', 'expired']]} />
      <${Select} label="Filter by rotation due" value=${filters.rotationDue} onChange=${set('rotationDue')}
        options=${[['', 'Any rotation'], ['true', 'rotation due'], ['false', 'not due']]} />
      <${Select} label="Filter by workspace" value=${filters.workspaceId} onChange=${set('workspaceId')}
        options=${[['', 'Any workspace'], ...(workspaces.data ?? []).map((w): [string, string] => [w.id, w.name])]} />
    </div>
    <${Alert} error=${keys.error} />
    <p role="status" class="count">${keys.data ? `${all.length}${cursor ? '+' : ''} ${all.length === 1 ? 'key' : 'keys'}` : 'Loading keys…'}</p>
    ${keys.data && all.length === 0 ? html`<p class="empty">No key matches.</p>` : null}
    ${all.length > 0 ? html`<table class="keys">
      <caption class="visually-hidden">API keys, grouped by group</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Type</th><th scope="col">Environment</th>
        <th scope="col">Status</th><th scope="col">Expiry</th><th scope="col">Last used</th></tr></thead>
      ${sections.map(([gid, list]) => html`<tbody>
        <tr class="group-row"><th scope="rowgroup" colspan="7">${gid === '' ? 'No group' : (groupName.get(gid) ?? gid)} <span class="muted">(${list.length})</span></th></tr>
        ${list.map((k) => html`<tr>
          <td><a href=${`#/keys/${encodeURIComponent(k.id)}`}>${k.name}</a>${k.description ? html`<div class="muted small">${k.description}</div>` : null}</td>
          <td><code>${k.prefix}</code></td><td>${k.type}</td><td>${k.environment}</td>
          <td><${StatusBadge} status=${k.status} />${k.rotationDue ? html` <span class="badge due">rotation due</span>` : null}</td>
          <td>${formatDate(k.expiresAt)}</td><td>${formatDate(k.lastUsedAt)}</td>
        </tr>`)}
      </tbody>`)}
    </table>` : null}
    ${cursor ? html`<button type="button" onClick=${more}>Load more keys</button>` : null}
  </section>`;
}

function AddKeyDialog(props: { workspaces: Workspace[]; groups: Group[]; onClose: () => void; onCreated: (key: ApiKey, secret: string) => void }): VNode {
  const [form, setForm] = useState({
    name: '', description: '', workspaceId: props.workspaces[0]?.id ?? '', type: 'workspace', environment: 'live', groupId: '', preset: '', permissionsLocked: false,
  });
  const [error, setError] = useState<ApiError | Error | null>(null);
  const [busy, setBusy] = useState(false);
  const catalogue = useLoad(async () => (await api<Catalogue>('GET', '/v1/permissions')).data, []);
  const field = (k: keyof typeof form) => (e: Event): void => {
    const t = e.currentTarget as HTMLInputElement;
    setForm((f) => ({ ...f, [k]: t.type === 'checkbox' ? t.checked : t.value }));
  };
  const about = (name: string): string | null => (error instanceof ApiError ? error.about(name) : null);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body: Record<string, unknown> = {
        name: form.name, description: form.description, workspaceId: form.workspaceId, type: form.type, environment: form.environment,
        groupId: form.groupId === '' ? null : form.groupId, permissionsLocked: form.permissionsLocked,
      };
      if (form.preset !== '') body.preset = form.preset;
      const { data } = await api<{ key: ApiKey; secret: string }>('POST', '/v1/keys', body);
      props.onCreated(data.key, data.secret);
    } catch (err) {
      setError(err as Error);
      setBusy(false);
    }
  };
  const general = error && !(error instanceof ApiError && error.fields.size > 0) ? error : (catalogue.error ?? null);
  const input = (k: 'name', label: string) => html`<${Field} label=${label} error=${about(k)}>${(id: string, d?: string) =>
    html`<input id=${id} value=${form[k]} onInput=${field(k)} required maxLength=${200} aria-describedby=${d} aria-invalid=${about(k) ? 'true' : undefined} />`}<//>`;
  const select = (k: 'workspaceId' | 'type' | 'environment' | 'groupId' | 'preset', label: string, options: ReadonlyArray<[string, string]>, hint?: string) =>
    html`<${Field} label=${label} error=${about(k === 'preset' ? 'preset' : k)} hint=${hint}>${(id: string, d?: string) =>
      html`<select id=${id} value=${form[k]} onChange=${field(k)} aria-describedby=${d} aria-invalid=${about(k) ? 'true' : undefined}>
        ${options.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
      </select>`}<//>`;
  return html`<${Dialog} title="Add API key" onClose=${props.onClose}>
    <form onSubmit=${submit} noValidate>
      <${Alert} error=${general} />
      ${input('name', 'Name')}
      <${Field} label="Description" error=${about('description')}>${(id: string, d?: string) =>
        html`<textarea id=${id} rows="2" value=${form.description} onInput=${field('description')} aria-describedby=${d} />`}<//>
      ${select('workspaceId', 'Workspace', props.workspaces.map((w) => [w.id, w.name]),
        props.workspaces.length === 0 ? 'No workspace yet: create one on the Workspaces page first.' : undefined)}
      <div class="row">
        ${select('type', 'Type', [['workspace', 'workspace (server to server)'], ['profile', 'profile (end-user app)']])}
        ${select('environment', 'Environment', [['live', 'live'], ['test', 'test']])}
      </div>
      ${select('groupId', 'Group', [['', 'No group'], ...props.groups.map((g): [string, string] => [g.id, g.name])])}
      ${select('preset', 'Permission preset', [['', 'None (tick permissions later)'], ...Object.keys(catalogue.data?.presets ?? {}).map((p): [string, string] => [p, p])])}
      <div class="check">
        <input type="checkbox" id="add-lock" checked=${form.permissionsLocked} onChange=${field('permissionsLocked')} />
        <label for="add-lock">Lock permissions (they cannot be changed later)</label>
      </div>
      <div class="actions end">
        <button type="button" onClick=${props.onClose}>Cancel</button>
        <button type="submit" class="primary" disabled=${busy}>Create</button>
      </div>
    </form>
  <//>`;
}
