import { useEffect, useState } from 'preact/hooks';
import { ApiProblem } from './api';

export type Loaded<T> =
  | { state: 'loading' }
  | { state: 'error'; error: ApiProblem | Error }
  | { state: 'ready'; value: T };

/**
 * Runs `load` whenever `deps` change, cancelling the previous load's answer (a slow answer to an old
 * search never replaces the newer one).
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: 'loading' });
  useEffect(() => {
    const controller = new AbortController();
    setLoaded({ state: 'loading' });
    load(controller.signal).then(
      (value) => {
        if (!controller.signal.aborted) setLoaded({ state: 'ready', value });
      },
      (error: unknown) => {
        if (controller.signal.aborted) return;
        setLoaded({ state: 'error', error: error instanceof Error ? error : new Error(String(error)) });
      },
    );
    return () => controller.abort();
    // biome-ignore lint/correctness/useExhaustiveDependencies: the caller names the dependencies.
  }, deps);
  return loaded;
}

export function problemText(error: ApiProblem | Error): string {
  return error instanceof ApiProblem ? `${error.message} (${error.code})` : error.message;
}
