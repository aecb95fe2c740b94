// A channel that keeps only the newest value: watchers of a directory or a lock need the
// current state, not every intermediate one, so a slow reader never builds a backlog.

export interface Latest<T> {
  push(value: T): void;
  end(): void;
  [Symbol.asyncIterator](): AsyncIterator<T>;
}

export function latest<T>(signal?: AbortSignal): Latest<T> {
  let value: { v: T } | undefined;
  let ended = false;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  signal?.addEventListener('abort', () => {
    ended = true;
    notify();
  });
  return {
    push(v: T) {
      if (ended) return;
      value = { v };
      notify();
    },
    end() {
      ended = true;
      notify();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (value) {
          const { v } = value;
          value = undefined;
          yield v;
          continue;
        }
        if (ended) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}
