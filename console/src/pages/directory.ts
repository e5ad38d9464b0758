import type { VNode } from 'preact';
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { ApiError, api, listAll, type ApiKey, type Group, type Owner, type Workspace } from '../api.js';
import { useLoad } from '../hooks.js';
import { Alert, CopyButton, Dialog, Field, formatDate, useModal } from '../ui.js';

/** A one-line create form: the API's error shows with the field it names. */
function CreateForm(props: { fields: ReadonlyArray<{ name: string; label: string }>; button: string; onCreate: (values: Record<string, string>) => Promise<void> }): VNode {
  const [values, setValues] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const apiError = error instanceof ApiError && error.fields.size > 0 ? error : null;
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await props.onCreate(values);
      setValues({});
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="create" onSubmit=${submit} noValidate>
    ${apiError ? null : html`<${Alert} error=${error} />`}
    <div class="row">
      ${props.fields.map((f) => html`<${Field} label=${f.label} error=${apiError?.about(f.name) ?? null}>${(id: string, d?: string) =>
        html`<input id=${id} value=${values[f.name] ?? ''} aria-describedby=${d} aria-invalid=${apiError?.about(f.name) ? 'true' : undefined}
          onInput=${(e: Event) => setValues({ ...values, [f.name]: (e.currentTarget as HTMLInputElement).value })} />`}<//>`)}
      <button type="submit" class="primary" disabled=${busy}>${props.button}</button>
    </div>
  </form>`;
}

/** The ETag of one resource as it is now: a write then sends it as If-Match, so it applies to what was confirmed. */
async function etagOf(path: string): Promise<string | null> {
  return (await api('GET', path)).etag;
}

/**
 * A confirmation naming the resource; Delete sends If-Match with the ETag read when it opened.
 * The API's refusal (409 while it is in use, 412 when it changed) shows on the page.
 */
function confirmDelete(modal: ReturnType<typeof useModal>, opts: { what: string; name: string; path: string; note: string; done: (err: unknown) => void }): void {
  const run = async (): Promise<void> => {
    let etag: string | null;
    try {
      etag = await etagOf(opts.path);
    } catch (err) {
      opts.done(err);
      return;
    }
    modal.open((close) => html`<${Dialog} title=${`Delete ${opts.what} “${opts.name}”?`} onClose=${close}>
      <p>${opts.note}</p>
      <div class="actions end"><button type="button" onClick=${close}>Cancel</button>
        <button type="button" class="danger" onClick=${async () => {
          close();
          try {
            await api('DELETE', opts.path, undefined, { ifMatch: etag });
            opts.done(null);
          } catch (err) {
            opts.done(err);
          }
        }}>Delete</button></div>
    <//>`);
  };
  void run();
}

export function WorkspacesPage(): VNode {
  const modal = useModal();
  const list = useLoad(() => listAll<Workspace>('/v1/workspaces'), []);
  const [error, setError] = useState<unknown>(null);
  const remove = (w: Workspace): void => confirmDelete(modal, {
    what: 'workspace', name: w.name, path: `/v1/workspaces/${encodeURIComponent(w.id)}`,
    note: 'A workspace that still holds keys is not deleted: delete its keys first. This cannot be undone.',
    done: (err) => { setError(err); list.reload(); },
  });
  return html`<section aria-labelledby="ws-heading">
    <h1 id="ws-heading">Workspaces</h1>
    <p class="hint">A workspace is a tenant. Its GUID is what Basic authentication pairs with a key's secret.</p>
    <${CreateForm} fields=${[{ name: 'name', label: 'Workspace name' }]} button="Create workspace"
      onCreate=${async (v: Record<string, string>) => { await api('POST', '/v1/workspaces', { name: v.name ?? '' }); list.reload(); }} />
    <${Alert} error=${error ?? list.error} />
    <table><caption class="visually-hidden">Workspaces</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">GUID</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${(list.data ?? []).map((w) => html`<tr><td>${w.name}</td>
        <td><code>${w.id}</code> <${CopyButton} text=${w.id} name=${`Copy GUID of ${w.name}`} /></td><td>${formatDate(w.createdAt)}</td>
        <td><button type="button" class="danger" aria-label=${`Delete workspace ${w.name}`} onClick=${() => remove(w)}>Delete</button></td></tr>`)}</tbody>
    </table>
  </section>`;
}

export function GroupsPage(): VNode {
  const modal = useModal();
  const list = useLoad(() => listAll<Group>('/v1/groups'), []);
  const [error, setError] = useState<unknown>(null);
  const remove = (g: Group): void => confirmDelete(modal, {
    what: 'group', name: g.name, path: `/v1/groups/${encodeURIComponent(g.id)}`,
    note: 'Keys must leave the group first: a group with keys is not deleted.',
    done: (err) => { setError(err); list.reload(); },
  });
  return html`<section aria-labelledby="groups-heading">
    <h1 id="groups-heading">Groups</h1>
    <p class="hint">Groups arrange keys on the key list.</p>
    <${CreateForm} fields=${[{ name: 'name', label: 'Group name' }, { name: 'description', label: 'Group description' }]} button="Create group"
      onCreate=${async (v: Record<string, string>) => { await api('POST', '/v1/groups', { name: v.name ?? '', description: v.description ?? '' }); list.reload(); }} />
    <${Alert} error=${error ?? list.error} />
    <table><caption class="visually-hidden">Groups</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Description</th><th scope="col">ID</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${(list.data ?? []).map((g) => html`<tr><td>${g.name}</td><td>${g.description}</td><td><code>${g.id}</code></td>
        <td><button type="button" class="danger" aria-label=${`Delete group ${g.name}`} onClick=${() => remove(g)}>Delete</button></td></tr>`)}</tbody>
    </table>
  </section>`;
}

export function OwnersPage(): VNode {
  const modal = useModal();
  const list = useLoad(() => listAll<Owner>('/v1/owners'), []);
  const [error, setError] = useState<unknown>(null);
  const ownerPath = (o: Owner): string => `/v1/owners/${encodeURIComponent(o.id)}`;
  const setStatus = async (o: Owner, status: 'active' | 'disabled', etag?: string | null): Promise<void> => {
    try {
      await api('PATCH', ownerPath(o), { status }, { ifMatch: etag ?? null });
      setError(null);
    } catch (err) {
      setError(err);
    }
    list.reload();
  };
  const disable = async (o: Owner): Promise<void> => {
    // The API lists keys by workspace, group and status, not by owner: count them here.
    let keys: ApiKey[];
    let etag: string | null;
    try {
      etag = await etagOf(ownerPath(o));
      keys = (await listAll<ApiKey>('/v1/keys?limit=500', 100_000)).filter((k) => k.ownerId === o.id && k.status === 'active');
    } catch (err) {
      setError(err);
      return;
    }
    modal.open((close) => html`<${Dialog} title=${`Disable owner “${o.name}”?`} onClose=${close}>
      <p>This suspends <strong>${keys.length} ${keys.length === 1 ? 'key' : 'keys'}</strong> of this owner: gateways refuse them (403 KEY_SUSPENDED) until the owner is enabled again.</p>
      <div class="actions end"><button type="button" onClick=${close}>Cancel</button>
        <button type="button" class="danger" onClick=${async () => { close(); await setStatus(o, 'disabled', etag); }}>Disable</button></div>
    <//>`);
  };
  const remove = (o: Owner): void => confirmDelete(modal, {
    what: 'owner', name: o.name, path: ownerPath(o),
    note: 'An owner that keys still refer to is not deleted: move or delete its keys first. This cannot be undone.',
    done: (err) => { setError(err); list.reload(); },
  });
  return html`<section aria-labelledby="owners-heading">
    <h1 id="owners-heading">Owners</h1>
    <p class="hint">An owner bounds the permissions of its keys; disabling it suspends them all.</p>
    <${CreateForm} fields=${[{ name: 'name', label: 'Owner name' }]} button="Create owner"
      onCreate=${async (v: Record<string, string>) => { await api('POST', '/v1/owners', { name: v.name ?? '' }); list.reload(); }} />
    <${Alert} error=${error ?? list.error} />
    <table><caption class="visually-hidden">Owners</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Permissions</th><th scope="col">ID</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${(list.data ?? []).map((o) => html`<tr><td>${o.name}</td><td><span class=${`badge ${o.status === 'active' ? 'active' : 'disabled'}`}>${o.status}</span></td>
        <td>${o.permissions.length === 0 ? 'none' : o.permissions.join(', ')}</td><td><code>${o.id}</code></td>
        <td>${o.status === 'active'
          ? html`<button type="button" aria-label=${`Disable owner ${o.name}`} onClick=${() => disable(o)}>Disable</button>`
          : html`<button type="button" aria-label=${`Enable owner ${o.name}`} onClick=${() => setStatus(o, 'active')}>Enable</button>`}
          <button type="button" class="danger" aria-label=${`Delete owner ${o.name}`} onClick=${() => remove(o)}>Delete</button></td></tr>`)}</tbody>
    </table>
  </section>`;
}
