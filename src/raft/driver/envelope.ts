// What the driver puts inside the core's opaque command entries and snapshots.
//
// Command entries carry a tag byte:
//   1: a client command: [1][16-byte proposal id][payload]. The id lets the proposing node
//      recognise its own entry when it is applied, whichever leader appended it (proposals
//      made on a follower are forwarded, and their index is never reported back).
//   2: the member address book: [2][JSON of [id, address][]]. Replicated so that every
//      node, including one that joins later, can reach every member by id.
// Snapshots: [u32 LE length of the address book JSON][book JSON][state machine bytes].

import type { NodeId } from '../core/index.js';

const TAG_COMMAND = 1;
const TAG_ADDRESSES = 2;
const ID_BYTES = 16;

/**
 * The core's entries are serialised by the WAL and the transport, which encode Uint8Array
 * but not Buffer (JSON.stringify would call Buffer's toJSON first): hand out plain views.
 */
function plain(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

export type AddressBook = ReadonlyMap<NodeId, string>;

export type DecodedCommand =
  | { readonly kind: 'command'; readonly proposal: string; readonly payload: Uint8Array }
  | { readonly kind: 'addresses'; readonly addresses: AddressBook };

export function encodeCommand(proposal: Buffer, payload: Uint8Array): Uint8Array {
  if (proposal.length !== ID_BYTES) throw new Error(`raft driver: proposal id must be ${ID_BYTES} bytes`);
  const out = Buffer.allocUnsafe(1 + ID_BYTES + payload.length);
  out[0] = TAG_COMMAND;
  proposal.copy(out, 1);
  out.set(payload, 1 + ID_BYTES);
  return plain(out);
}

export function encodeAddresses(book: AddressBook): Uint8Array {
  const json = Buffer.from(JSON.stringify([...book].sort(([a], [b]) => a.localeCompare(b))));
  return plain(Buffer.concat([Buffer.from([TAG_ADDRESSES]), json]));
}

function parseBook(json: string): Map<NodeId, string> {
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed)) throw new Error('raft driver: address book is not a list');
  const book = new Map<NodeId, string>();
  for (const pair of parsed as unknown[]) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') throw new Error('raft driver: malformed address book entry');
    book.set(pair[0], pair[1]);
  }
  return book;
}

/** Throws on bytes this driver did not write: a corrupt entry must not be applied as something else. */
export function decodeCommand(data: Uint8Array): DecodedCommand {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  switch (buf[0]) {
    case TAG_COMMAND:
      if (buf.length < 1 + ID_BYTES) throw new Error('raft driver: truncated command entry');
      return { kind: 'command', proposal: buf.toString('hex', 1, 1 + ID_BYTES), payload: buf.subarray(1 + ID_BYTES) };
    case TAG_ADDRESSES:
      return { kind: 'addresses', addresses: parseBook(buf.toString('utf8', 1)) };
    default:
      throw new Error(`raft driver: unknown command entry tag ${String(buf[0])}`);
  }
}

export function encodeSnapshot(book: AddressBook, state: Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify([...book]));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(json.length, 0);
  return plain(Buffer.concat([head, json, state]));
}

export function decodeSnapshot(data: Uint8Array): { readonly addresses: Map<NodeId, string>; readonly state: Uint8Array } {
  // The empty snapshot is the core's own "nothing yet" (a node that never had one).
  if (data.length === 0) return { addresses: new Map(), state: new Uint8Array(0) };
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < 4) throw new Error('raft driver: truncated snapshot');
  const len = buf.readUInt32LE(0);
  if (4 + len > buf.length) throw new Error('raft driver: truncated snapshot address book');
  return { addresses: parseBook(buf.toString('utf8', 4, 4 + len)), state: buf.subarray(4 + len) };
}
