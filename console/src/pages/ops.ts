import type { VNode } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, type AuditEntry, type NodeReport } from '../api.js';
import { useLoad } from '../hooks.js';
import { Alert, formatDate } from '../ui.js';
import { changedFields } from './key.js';

export function AuditPage(): VNode {
  const [keyId, setKeyId] = useState('');
  const [applied, setApplied] = useState('');
  const audit = useLoad(async () => {
    const q = new URLSearchParams({ limit: '200' });
    if (applied !== '') q.set('keyId', applied);
    return (await api<{ items: AuditEntry[] }>('GET', `/v1/audit?${q.toString()}`)).data.items;
  }, [applied]);
  return html`<section aria-labelledby="audit-heading">
    <h1 id="audit-heading">Audit log</h1>
    <form class="toolbar" role="search" onSubmit=${(e: Event) => { e.preventDefault(); setApplied(keyId.trim()); }}>
      <label class="filter">Key ID
        <input value=${keyId} placeholder="key_…" onInput=${(e: Event) => setKeyId((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <button type="submit">Show entries</button>
      <button type="button" onClick=${audit.reload}>Refresh</button>
    </form>
    <${Alert} error=${audit.error} />
    <table><caption class="visually-hidden">Audit entries, newest first</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Changed</th></tr></thead>
      <tbody>${(audit.data ?? []).map((e) => html`<tr><td>${formatDate(e.at)}</td><td>${e.actor.name}</td><td>${e.action}</td>
        <td>${e.target.type === 'key' ? html`<a href=${`#/keys/${encodeURIComponent(e.target.id)}`}>${e.target.id}</a>` : html`${e.target.type} <code>${e.target.id}</code>`}</td>
        <td>${changedFields(e.before, e.after)}</td></tr>`)}</tbody>
    </table>
  </section>`;
}

/** Each gateway process and the store version it has applied, refreshed every 5 s (the nodes' own beat). */
export function NodesPage(): VNode {
  const nodes = useLoad(async () => (await api<{ items: NodeReport[] }>('GET', '/v1/nodes')).data.items, []);
  useEffect(() => {
    const t = setInterval(nodes.reload, 5000);
    return () => clearInterval(t);
  }, [nodes.reload]);
  const items = nodes.data ?? [];
  const newest = items.reduce((m, n) => Math.max(m, n.appliedVersion), 0);
  const behind = items.filter((n) => n.appliedVersion < newest).length;
  return html`<section aria-labelledby="nodes-heading">
    <h1 id="nodes-heading">Nodes</h1>
    <p role="status">${nodes.data === undefined ? 'Loading nodes…'
      : items.length === 0 ? 'No node has reported in the last 15 s.'
      : behind === 0 ? `All ${items.length} ${items.length === 1 ? 'node has' : 'nodes have'} applied store version ${newest}.`
      : `${behind} of ${items.length} nodes have not yet applied store version ${newest}.`}</p>
    <${Alert} error=${nodes.error} />
    <table><caption class="visually-hidden">Gateway nodes</caption>
      <thead><tr><th scope="col">Node</th><th scope="col">Role</th><th scope="col">Applied store version</th><th scope="col">Reported</th></tr></thead>
      <tbody>${items.map((n) => html`<tr><td><code>${n.id}</code></td><td>${n.role}</td>
        <td>${n.appliedVersion}${n.appliedVersion < newest ? html` <span class="badge disabled">behind</span>` : null}</td><td>${formatDate(n.reportedAt)}</td></tr>`)}</tbody>
    </table>
  </section>`;
}
