// For state machines implementing snapshotLater(): serialise a big array as JSON a slice at
// a time, yielding to the event loop between slices, so that ticks, heartbeats and
// requests are served while a snapshot is written.

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * JSON of `items` as UTF-8 bytes (what JSON.stringify(items) would give), built `slice`
 * items per turn; bytes, not a string, so that no single step encodes the whole text.
 */
export async function jsonArrayInSlices(items: readonly unknown[], slice = 2_000): Promise<Buffer> {
  const parts: Buffer[] = [OPEN];
  for (let at = 0; at < items.length; at += slice) {
    const text = JSON.stringify(items.slice(at, at + slice));
    if (at > 0) parts.push(COMMA);
    parts.push(Buffer.from(text.slice(1, -1)));
    if (at + slice < items.length) await yieldTurn();
  }
  parts.push(CLOSE);
  return Buffer.concat(parts);
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');
