// Shared pieces: the modal host, dialogs, fields with inline errors, copy buttons, tabs.
import { createContext, type ComponentChildren, type VNode } from 'preact';
import { html } from 'htm/preact';
import { useContext, useEffect, useId, useRef, useState } from 'preact/hooks';
import qrcode from 'qrcode-generator';

/** One modal at a time, rendered beside the page (which is then inert and hidden from assistive tech). */
export interface Modal {
  open(render: (close: () => void) => VNode): void;
  close(): void;
}
export const ModalContext = createContext<Modal>({ open: () => undefined, close: () => undefined });
export const useModal = (): Modal => useContext(ModalContext);

/** A native modal dialog: focus moves in, Escape closes (the modal host returns focus to the opener). */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren; describedBy?: string; wide?: boolean }): VNode {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  const onCancel = (e: Event): void => {
    e.preventDefault();
    props.onClose();
  };
  return html`<dialog ref=${ref} class=${props.wide ? 'dialog wide' : 'dialog'} aria-labelledby=${titleId}
      aria-describedby=${props.describedBy} onCancel=${onCancel}>
    <h2 id=${titleId}>${props.title}</h2>
    ${props.children}
  </dialog>`;
}

/** A labelled control with its hint and its error (from the API) announced with it. */
export function Field(props: { label: string; error?: string | null; hint?: string; children: (id: string, describedBy: string | undefined) => VNode }): VNode {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = [props.hint ? hintId : '', props.error ? errorId : ''].filter(Boolean).join(' ') || undefined;
  return html`<div class=${props.error ? 'field invalid' : 'field'}>
    <label for=${id}>${props.label}</label>
    ${props.children(id, describedBy)}
    ${props.hint ? html`<p class="hint" id=${hintId}>${props.hint}</p>` : null}
    ${props.error ? html`<p class="error" id=${errorId}>${props.error}</p>` : null}
  </div>`;
}

/** An error that names no field: shown once, announced. */
export function Alert(props: { error: unknown }): VNode | null {
  if (props.error === null || props.error === undefined) return null;
  const message = props.error instanceof Error ? props.error.message : String(props.error);
  return html`<p class="alert" role="alert">${message}</p>`;
}

export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** A copy button that says when it copied (or that the browser refused: then select and copy by hand). */
export function CopyButton(props: { text: string; label?: string; name?: string }): VNode {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const onClick = async (): Promise<void> => {
    setState((await copyText(props.text)) ? 'copied' : 'failed');
  };
  return html`<span class="copy">
    <button type="button" onClick=${onClick} aria-label=${props.name}>${props.label ?? 'Copy'}</button>
    <span role="status" class="copy-status">${state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy refused by the browser: select the text and copy it' : ''}</span>
  </span>`;
}

/** The QR code of a text as a data: image (the CSP allows data: images, nothing inline runs). */
export function QrCode(props: { text: string; alt: string }): VNode {
  const qr = qrcode(0, 'M');
  qr.addData(props.text);
  qr.make();
  return html`<img class="qr" src=${qr.createDataURL(4, 4)} alt=${props.alt} width=${(qr.getModuleCount() + 8) * 4} />`;
}

/** A once-only value (a key's secret, a simple-auth salt): read-only, copyable, gone after Done. */
export function OnceDialog(props: { title: string; fieldLabel: string; value: string; note: string; qrAlt?: string; onDone: () => void }): VNode {
  const noteId = useId();
  return html`<${Dialog} title=${props.title} onClose=${props.onDone} describedBy=${noteId}>
    <p id=${noteId} class="warning">${props.note}</p>
    <${Field} label=${props.fieldLabel}>${(id: string) =>
      html`<input id=${id} class="secret" readonly value=${props.value} spellcheck=${false} autocomplete="off"
        onFocus=${(e: Event) => (e.currentTarget as HTMLInputElement).select()} />`}<//>
    <div class="actions">
      <${CopyButton} text=${props.value} />
    </div>
    ${props.qrAlt ? html`<${QrCode} text=${props.value} alt=${props.qrAlt} />` : null}
    <div class="actions end">
      <button type="button" class="primary" onClick=${props.onDone}>Done</button>
    </div>
  <//>`;
}

/** WAI-ARIA tabs: arrow keys move between tabs (roving tabindex), Home and End jump. */
export function Tabs(props: { tabs: readonly string[]; selected: string; onSelect: (tab: string) => void; label: string; panel: () => VNode }): VNode {
  const base = useId();
  const idOf = (t: string): string => `${base}-${t.replace(/\W+/g, '-')}`;
  const onKey = (e: KeyboardEvent): void => {
    const i = props.tabs.indexOf(props.selected);
    let next: number | null = null;
    if (e.key === 'ArrowRight' || e.key === 'ArrowDown') next = (i + 1) % props.tabs.length;
    if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') next = (i - 1 + props.tabs.length) % props.tabs.length;
    if (e.key === 'Home') next = 0;
    if (e.key === 'End') next = props.tabs.length - 1;
    if (next === null) return;
    e.preventDefault();
    const tab = props.tabs[next]!;
    props.onSelect(tab);
    requestAnimationFrame(() => document.getElementById(`${idOf(tab)}-tab`)?.focus());
  };
  return html`<div class="tabs">
    <div role="tablist" aria-label=${props.label} onKeyDown=${onKey}>
      ${props.tabs.map((t) => html`<button type="button" role="tab" id=${`${idOf(t)}-tab`} aria-controls=${`${idOf(t)}-panel`}
        aria-selected=${t === props.selected ? 'true' : 'false'} tabindex=${t === props.selected ? 0 : -1}
        onClick=${() => props.onSelect(t)}>${t}</button>`)}
    </div>
    <div role="tabpanel" id=${`${idOf(props.selected)}-panel`} aria-labelledby=${`${idOf(props.selected)}-tab`} tabindex="0" class="panel">
      ${props.panel()}
    </div>
  </div>`;
}

export function formatDate(iso: string | null | undefined, never = 'never'): string {
  if (!iso) return never;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC');
}

export function StatusBadge(props: { status: string }): VNode {
  return html`<span class=${`badge ${props.status}`}>${props.status}</span>`;
}

/** Lines of a textarea → entries (blank lines dropped). */
export const linesOf = (text: string): string[] => text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
