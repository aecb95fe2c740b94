// For state machines implementing snapshotLater(): serialise a big array as JSON a slice at
// a time, yielding to the event loop between slices, so that ticks, heartbeats and
// requests are served while a snapshot is written.

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** JSON text of `items` (as JSON.stringify(items) would give), built `slice` items per turn. */
export async function jsonArrayInSlices(items: readonly unknown[], slice = 2_000): Promise<string> {
  const parts: string[] = [];
  for (let at = 0; at < items.length; at += slice) {
    const text = JSON.stringify(items.slice(at, at + slice));
    parts.push(text.slice(1, -1));
    if (at + slice < items.length) await yieldTurn();
  }
  return `[${parts.join(',')}]`;
}
