// Who is waiting on what. A blocking query registers a wake-up on the part of the state
// its answer depends on (one key, a key prefix, or the session table); a write wakes only
// the waiters it could have changed, so thousands of idle watchers cost nothing per write
// beyond a lookup per touched key.

export type WatchTopic =
  | { kind: 'key'; key: string }
  | { kind: 'prefix'; prefix: string }
  | { kind: 'sessions' };

export type Wake = () => void;

export interface StateChange {
  /** KV keys written, released or deleted by one operation. */
  keys: readonly string[];
  /** Whether the session table changed. */
  sessions: boolean;
}

export class WatchHub {
  private readonly byKey = new Map<string, Set<Wake>>();
  private readonly byPrefix = new Map<string, Set<Wake>>();
  private readonly onSessions = new Set<Wake>();

  /** Registers `wake`; the returned function unregisters it (idempotent). */
  subscribe(topic: WatchTopic, wake: Wake): () => void {
    switch (topic.kind) {
      case 'key':
        return addTo(this.byKey, topic.key, wake);
      case 'prefix':
        return addTo(this.byPrefix, topic.prefix, wake);
      case 'sessions':
        this.onSessions.add(wake);
        return () => {
          this.onSessions.delete(wake);
        };
      default: {
        const unreachable: never = topic;
        throw new Error(`unknown watch topic ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** Number of registered waiters (for tests and the debug log). */
  size(): number {
    let n = this.onSessions.size;
    for (const set of this.byKey.values()) n += set.size;
    for (const set of this.byPrefix.values()) n += set.size;
    return n;
  }

  notify(change: StateChange): void {
    const woken = new Set<Wake>();
    for (const key of change.keys) {
      for (const wake of this.byKey.get(key) ?? []) woken.add(wake);
      // Whichever is smaller: the prefixes of this key, or the prefixes being watched.
      if (this.byPrefix.size <= key.length + 1) {
        for (const [prefix, set] of this.byPrefix) {
          if (key.startsWith(prefix)) for (const wake of set) woken.add(wake);
        }
      } else {
        for (let end = 0; end <= key.length; end++) {
          for (const wake of this.byPrefix.get(key.slice(0, end)) ?? []) woken.add(wake);
        }
      }
    }
    if (change.sessions) for (const wake of this.onSessions) woken.add(wake);
    // Collected first: a wake-up usually unsubscribes itself.
    for (const wake of woken) wake();
  }
}

function addTo(map: Map<string, Set<Wake>>, name: string, wake: Wake): () => void {
  let set = map.get(name);
  if (set === undefined) {
    set = new Set();
    map.set(name, set);
  }
  set.add(wake);
  return () => {
    const current = map.get(name);
    if (current === undefined) return;
    current.delete(wake);
    if (current.size === 0) map.delete(name);
  };
}
