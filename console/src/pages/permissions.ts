import type { VNode } from 'preact';
import { html } from 'htm/preact';
import type { Catalogue } from '../api.js';

/** Whether a key's permission entry (`events.create`, `events.*`, `*.read`, `*`) covers a permission id. */
export function covers(pattern: string, id: string): boolean {
  if (pattern === '*' || pattern === id) return true;
  const dot = id.indexOf('.');
  const module = id.slice(0, dot);
  const action = id.slice(dot + 1);
  return pattern === `${module}.*` || pattern === `*.${action}`;
}

export function allIds(catalogue: Catalogue): string[] {
  return Object.values(catalogue.modules).flat();
}

/** The permission ids a list of entries covers. */
export function expand(entries: readonly string[], catalogue: Catalogue): Set<string> {
  return new Set(allIds(catalogue).filter((id) => entries.some((p) => covers(p, id))));
}

const sameSet = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean => a.size === b.size && [...a].every((x) => b.has(x));

/** The configured preset the ticks amount to, or null ("Custom"). */
export function matchingPreset(ticks: ReadonlySet<string>, catalogue: Catalogue): string | null {
  for (const [name, entries] of Object.entries(catalogue.presets)) if (sameSet(expand(entries, catalogue), ticks)) return name;
  return null;
}

const ACTION_ORDER = ['read', 'create', 'update', 'delete'];

/** Modules as rows, actions as columns, one checkbox per permission named by its id. */
export function PermissionMatrix(props: { catalogue: Catalogue; ticks: ReadonlySet<string>; locked: boolean; lockReason: string;
  onChange: (ticks: Set<string>) => void; onPreset: (name: string) => void }): VNode {
  const { catalogue, ticks } = props;
  const modules = Object.keys(catalogue.modules).sort();
  const actions = [...new Set(allIds(catalogue).map((id) => id.slice(id.indexOf('.') + 1)))]
    .sort((a, b) => (ACTION_ORDER.indexOf(a) + 1 || 99) - (ACTION_ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b));
  const preset = matchingPreset(ticks, catalogue);
  const toggle = (id: string) => (e: Event): void => {
    const next = new Set(ticks);
    if ((e.currentTarget as HTMLInputElement).checked) next.add(id);
    else next.delete(id);
    props.onChange(next);
  };
  return html`<div class="permissions">
    ${props.locked ? html`<p class="locked" id="perm-locked"><strong>Read-only:</strong> ${props.lockReason}</p>` : null}
    <div class="presets" role="group" aria-label="Permission presets">
      ${Object.keys(catalogue.presets).map((name) => html`<button type="button" aria-pressed=${preset === name ? 'true' : 'false'}
        disabled=${props.locked} aria-describedby=${props.locked ? 'perm-locked' : undefined} onClick=${() => props.onPreset(name)}>${name}</button>`)}
      <p class="current" role="status">Current: <strong>${preset ?? 'Custom'}</strong></p>
    </div>
    <table class="matrix">
      <caption>Permissions by module</caption>
      <thead><tr><th scope="col">Module</th>${actions.map((a) => html`<th scope="col">${a}</th>`)}</tr></thead>
      <tbody>
        ${modules.map((m) => html`<tr>
          <th scope="row">${m}</th>
          ${actions.map((a) => {
            const id = `${m}.${a}`;
            if (!(catalogue.modules[m] ?? []).includes(id)) return html`<td class="none"><span class="visually-hidden">no ${id}</span></td>`;
            return html`<td><input type="checkbox" aria-label=${id} title=${id} checked=${ticks.has(id)} disabled=${props.locked}
              aria-describedby=${props.locked ? 'perm-locked' : undefined} onChange=${toggle(id)} /></td>`;
          })}
        </tr>`)}
      </tbody>
    </table>
  </div>`;
}
