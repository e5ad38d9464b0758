import { useCallback, useEffect, useState } from 'preact/hooks';

export interface Loaded<T> { data: T | undefined; error: unknown; reload: () => void; set: (v: T) => void }

/** Loads something when `deps` change; `reload` loads it again; the last data stays while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown }>({ data: undefined, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then((data) => { if (live) setState({ data, error: null }); }, (error: unknown) => { if (live) setState((s) => ({ data: s.data, error })); });
    return () => { live = false; };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const set = useCallback((data: T) => setState({ data, error: null }), []);
  return { ...state, reload, set };
}

/** The hash route (`#/keys/key_1` → ['keys', 'key_1']): the server serves one page, whatever the view. */
export function useHashRoute(): string[] {
  const read = (): string[] => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = (): void => setRoute(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

export const navigate = (path: string): void => { location.hash = `#${path}`; };
