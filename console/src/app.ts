import type { VNode } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { useHashRoute } from './hooks.js';
import { ApiError, SIGNED_OUT, api, session } from './api.js';
import { Field, ModalContext, type Modal } from './ui.js';
import { KeysPage } from './pages/keys.js';
import { KeyPage } from './pages/key.js';
import { GroupsPage, OwnersPage, WorkspacesPage } from './pages/directory.js';
import { AuditPage, NodesPage } from './pages/ops.js';

function SignIn(props: { onSignedIn: () => void; notice: string | null }): VNode {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // Any authenticated read tells whether the token is good (the catalogue needs no scope). A
      // 403 is still a good token: what its scopes do not allow is refused where it is tried.
      try {
        await api('GET', '/v1/permissions', undefined, { token: token.trim() });
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 403)) throw err;
      }
      session.signIn(token.trim());
      props.onSignedIn();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'That admin token was refused.' : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <h1>keygate console</h1>
    <form onSubmit=${submit} noValidate>
      ${props.notice ? html`<p class="alert" role="alert">${props.notice}</p>` : null}
      <${Field} label="Admin token" error=${error} hint="One of admin.tokens. It stays in this tab (sessionStorage) and is sent only to this admin port.">${(id: string, d?: string) =>
        html`<input id=${id} type="password" autocomplete="current-password" required value=${token} aria-describedby=${d}
          aria-invalid=${error ? 'true' : undefined} onInput=${(e: Event) => setToken((e.currentTarget as HTMLInputElement).value)} />`}<//>
      <button type="submit" class="primary" disabled=${busy || token.trim() === ''}>Sign in</button>
    </form>
  </main>`;
}

const NAV: ReadonlyArray<[string, string]> = [
  ['keys', 'API keys'], ['workspaces', 'Workspaces'], ['groups', 'Groups'], ['owners', 'Owners'], ['audit', 'Audit log'], ['nodes', 'Nodes'],
];

export function App(): VNode {
  const [signedIn, setSignedIn] = useState(() => session.token() !== null);
  const [notice, setNotice] = useState<string | null>(null);
  const [modal, setModal] = useState<VNode | null>(null);
  const route = useHashRoute();

  useEffect(() => {
    const on = (): void => {
      setModal(null);
      setSignedIn(false);
      setNotice('The admin API refused the token: sign in again.');
    };
    window.addEventListener(SIGNED_OUT, on);
    return () => window.removeEventListener(SIGNED_OUT, on);
  }, []);

  // Focus goes back to what opened the first dialog (the page behind is inert while one is open,
  // so the opener must be noted before the dialog renders).
  const opener = useRef<HTMLElement | null>(null);
  const modalApi = useMemo<Modal>(() => {
    const close = (): void => {
      setModal(null);
      const back = opener.current;
      opener.current = null;
      setTimeout(() => { if (back && document.contains(back)) back.focus(); }, 0);
    };
    return {
      open: (render) => {
        if (opener.current === null && document.activeElement instanceof HTMLElement && document.activeElement !== document.body) opener.current = document.activeElement;
        setModal(render(close));
      },
      close,
    };
  }, []);

  if (!signedIn) return html`<${SignIn} notice=${notice} onSignedIn=${() => { setNotice(null); setSignedIn(true); }} />`;

  const [section = 'keys', id] = route;
  let page: VNode;
  if (section === 'keys' && id !== undefined) page = html`<${KeyPage} id=${id} />`;
  else if (section === 'workspaces') page = html`<${WorkspacesPage} />`;
  else if (section === 'groups') page = html`<${GroupsPage} />`;
  else if (section === 'owners') page = html`<${OwnersPage} />`;
  else if (section === 'audit') page = html`<${AuditPage} />`;
  else if (section === 'nodes') page = html`<${NodesPage} />`;
  else page = html`<${KeysPage} />`;

  const signOut = (): void => {
    session.signOut();
    setSignedIn(false);
  };

  // While a dialog is open the page behind it is inert and hidden, so only the dialog's controls are found.
  return html`<${ModalContext.Provider} value=${modalApi}>
    <div class="shell" inert=${modal !== null} aria-hidden=${modal !== null ? 'true' : undefined}>
      <header class="top">
        <a class="brand" href="#/keys">keygate</a>
        <nav aria-label="Console">
          <ul>${NAV.map(([path, label]) => html`<li><a href=${`#/${path}`} aria-current=${section === path ? 'page' : undefined}>${label}</a></li>`)}</ul>
        </nav>
        <button type="button" class="link" onClick=${signOut}>Sign out</button>
      </header>
      <main>${page}</main>
    </div>
    ${modal}
  <//>`;
}
