// The wire form of the core's messages, and how many of them share one gRPC message.
//
// A message is JSON with byte arrays as {"$b64": ...}: the union in core/types.ts is
// plain data, and one encoding (the WAL's) keeps the two easy to read side by side. An
// installSnapshot is the exception: [0x02][u32 LE length][the message as JSON without the
// state][the state's bytes] — JSON with base64 of a whole state machine would stall the
// leader's event loop for every snapshot it sends.
// A frame (one gRPC message) is a run of records [kind u8][length u32 LE][bytes]:
//   kind 0: one whole message;  1: a part of a message, more follow;  2: its last part.
// Parts let a message larger than a frame (a snapshot) cross without raising the frame
// limit, so the receiver's per-frame allocation stays bounded while the reassembled size
// has its own, larger limit.

import type { Message } from '../core/index.js';

const WHOLE = 0;
const PART = 1;
const LAST = 2;
const RECORD_HEADER = 5;

const TYPES: ReadonlySet<string> = new Set<Message['type']>([
  'preVote',
  'preVoteResp',
  'vote',
  'voteResp',
  'append',
  'appendAck',
  'appendReject',
  'heartbeat',
  'heartbeatResp',
  'installSnapshot',
  'timeoutNow',
  'propose',
  'readIndex',
  'readIndexResp',
]);

const BINARY_SNAPSHOT = 0x02;

const b64 = (v: Uint8Array): { $b64: string } => ({ $b64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') });

function fromB64(value: unknown): Uint8Array {
  const text = typeof value === 'object' && value !== null ? (value as { $b64?: unknown }).$b64 : undefined;
  if (typeof text !== 'string') throw new Error('raft transport: malformed bytes field');
  const buf = Buffer.from(text, 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

// The byte fields are converted where the types put them (entries' data, forwarded
// commands) instead of through a JSON replacer/reviver: those call back into JS for every
// value of every message, a measurable share of a member's CPU per write.
export function encodeMessage(m: Message): Buffer {
  if (m.type === 'installSnapshot') {
    const { data, meta } = m.snapshot;
    const head = Buffer.from(JSON.stringify({ ...m, snapshot: { meta } }));
    const len = Buffer.alloc(5);
    len[0] = BINARY_SNAPSHOT;
    len.writeUInt32LE(head.length, 1);
    return Buffer.concat([len, head, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
  }
  if (m.type === 'append') return Buffer.from(JSON.stringify({ ...m, entries: m.entries.map((e) => (e.kind === 'command' ? { ...e, data: b64(e.data) } : e)) }));
  if (m.type === 'propose') return Buffer.from(JSON.stringify({ ...m, commands: m.commands.map(b64) }));
  return Buffer.from(JSON.stringify(m));
}

function decodeBinarySnapshot(bytes: Buffer): unknown {
  if (bytes.length < 5) throw new Error('raft transport: truncated snapshot message');
  const headLength = bytes.readUInt32LE(1);
  if (5 + headLength > bytes.length) throw new Error('raft transport: truncated snapshot message');
  const head = JSON.parse(bytes.toString('utf8', 5, 5 + headLength)) as { type?: unknown; snapshot?: { meta?: unknown } };
  if (head.type !== 'installSnapshot' || typeof head.snapshot !== 'object' || head.snapshot === null) throw new Error('raft transport: not a snapshot message');
  const data = bytes.subarray(5 + headLength);
  return { ...head, snapshot: { meta: head.snapshot.meta, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) } };
}

export function decodeMessage(bytes: Buffer): Message {
  const parsed: unknown = bytes[0] === BINARY_SNAPSHOT ? decodeBinarySnapshot(bytes) : JSON.parse(bytes.toString('utf8'));
  if (typeof parsed !== 'object' || parsed === null) throw new Error('raft transport: message is not an object');
  const r = parsed as Record<string, unknown>;
  if (typeof r.type !== 'string' || !TYPES.has(r.type) || typeof r.from !== 'string' || typeof r.to !== 'string') {
    throw new Error('raft transport: not a raft message');
  }
  if (r.type === 'append') {
    if (!Array.isArray(r.entries)) throw new Error('raft transport: append without entries');
    for (const e of r.entries as Record<string, unknown>[]) if (e.kind === 'command') e.data = fromB64(e.data);
  } else if (r.type === 'propose') {
    if (!Array.isArray(r.commands)) throw new Error('raft transport: proposal without commands');
    r.commands = (r.commands as unknown[]).map(fromB64);
  }
  // Peers are members of the cluster (authenticated by TLS where enabled): past the
  // discriminant, addressing and byte fields, the shape is what encodeMessage wrote.
  return parsed as Message;
}

/** Packs encoded messages into frames of at most maxFrameBytes, splitting any that are larger. */
export function packFrames(messages: readonly Buffer[], maxFrameBytes: number): Buffer[] {
  const room = maxFrameBytes - RECORD_HEADER;
  if (room <= 0) throw new Error('raft transport: frame limit too small');
  const frames: Buffer[] = [];
  let parts: Buffer[] = [];
  let size = 0;
  const push = (kind: number, body: Buffer): void => {
    if (size + RECORD_HEADER + body.length > maxFrameBytes && parts.length > 0) {
      frames.push(Buffer.concat(parts));
      parts = [];
      size = 0;
    }
    const head = Buffer.allocUnsafe(RECORD_HEADER);
    head[0] = kind;
    head.writeUInt32LE(body.length, 1);
    parts.push(head, body);
    size += RECORD_HEADER + body.length;
  };
  for (const m of messages) {
    if (m.length <= room) {
      push(WHOLE, m);
      continue;
    }
    for (let at = 0; at < m.length; at += room) {
      const end = Math.min(m.length, at + room);
      push(end === m.length ? LAST : PART, m.subarray(at, end));
    }
  }
  if (parts.length > 0) frames.push(Buffer.concat(parts));
  return frames;
}

/** Reassembles messages from the frames of one stream, in order. */
export class FrameReader {
  private partial: Buffer[] = [];
  private partialBytes = 0;

  constructor(private readonly maxMessageBytes: number) {}

  /** Returns the complete messages in this frame; throws on malformed or oversized input. */
  read(frame: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < frame.length) {
      if (at + RECORD_HEADER > frame.length) throw new Error('raft transport: truncated frame record');
      const kind = frame[at];
      const len = frame.readUInt32LE(at + 1);
      const end = at + RECORD_HEADER + len;
      if (end > frame.length) throw new Error('raft transport: frame record overruns its frame');
      const body = frame.subarray(at + RECORD_HEADER, end);
      at = end;
      switch (kind) {
        case WHOLE:
          if (this.partial.length > 0) throw new Error('raft transport: whole message inside a split one');
          if (len > this.maxMessageBytes) throw new Error(`raft transport: message of ${len} bytes exceeds the limit of ${this.maxMessageBytes}`);
          out.push(body);
          break;
        case PART:
        case LAST:
          this.partialBytes += len;
          if (this.partialBytes > this.maxMessageBytes) throw new Error(`raft transport: message exceeds the limit of ${this.maxMessageBytes} bytes`);
          // Copied: the frame's buffer is not ours to keep.
          this.partial.push(Buffer.from(body));
          if (kind === LAST) {
            out.push(Buffer.concat(this.partial));
            this.partial = [];
            this.partialBytes = 0;
          }
          break;
        default:
          throw new Error(`raft transport: unknown frame record kind ${String(kind)}`);
      }
    }
    return out;
  }
}
