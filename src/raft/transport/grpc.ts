// The raft transport over gRPC (@grpc/grpc-js, no .proto: the service is defined here
// with our own framing, see codec.ts). One client stream per peer carries everything we
// send it; the peer's server delivers what it reads to its driver. Messages that cannot
// go out right now (peer down, backing off, queue full) are dropped: raft retransmits
// what matters, and queueing for a dead peer would only grow memory and deliver stale
// traffic later.

import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import type { Message, NodeId } from '../core/index.js';
import type { AddressBook, Transport } from '../driver/index.js';
import { decodeMessage, encodeMessage, FrameReader, packFrames } from './codec.js';

const PATH = '/swarmshift.raft.Raft/Stream';
const identity = (b: Buffer): Buffer => b;

const SERVICE: grpc.ServiceDefinition = {
  stream: {
    path: PATH,
    requestStream: true,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/** TLS hook: pass node-certificate credentials from src/ca; insecure when absent (tests, loopback). */
export interface TransportCredentials {
  readonly server: grpc.ServerCredentials;
  readonly channel: grpc.ChannelCredentials;
  /**
   * The raft member a peer's (verified) certificate speaks for, or undefined for none.
   * When set, a stream carries only messages `from` that member: a node cannot speak for
   * another, and a certificate that names no member gets PERMISSION_DENIED.
   */
  readonly memberOf?: (peer: PeerCertificate) => NodeId | undefined;
}

export interface GrpcTransportOptions {
  readonly id: NodeId;
  /** host:port to serve on (port 0 picks one; see port()). */
  readonly listen: string;
  readonly credentials?: TransportCredentials;
  /** One gRPC message: several raft messages, or a part of a large one. */
  readonly maxFrameBytes?: number;
  /** One raft message after reassembly (a snapshot is the largest). */
  readonly maxMessageBytes?: number;
  /** Per peer, waiting to be written; beyond it messages are dropped. */
  readonly maxQueueBytes?: number;
  /** For debugging: a peer link failed. */
  readonly onPeerError?: (peer: NodeId, error: Error) => void;
}

class ImpersonationError extends Error {}

const DEFAULTS = { maxFrameBytes: 4 << 20, maxMessageBytes: 512 << 20, maxQueueBytes: 64 << 20 };
const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 1000;

class PeerLink {
  private client: grpc.Client | null = null;
  private call: grpc.ClientWritableStream<Buffer> | null = null;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  private draining = false;
  private backoffMs = 0;
  private retryAt = 0;
  private closed = false;

  constructor(
    private readonly self: NodeId,
    readonly peer: NodeId,
    readonly address: string,
    private readonly cfg: Required<Omit<GrpcTransportOptions, 'onPeerError' | 'credentials' | 'listen' | 'id'>> & { credentials: grpc.ChannelCredentials },
    private readonly onError: (error: Error) => void,
  ) {}

  enqueue(bytes: Buffer): void {
    if (this.closed || this.queuedBytes + bytes.length > this.cfg.maxQueueBytes) return;
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Everything enqueued in this turn of the event loop goes out in one frame: batching.
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    if (this.closed || this.draining || this.queue.length === 0) return;
    let call = this.call;
    if (call === null) {
      if (Date.now() < this.retryAt) {
        this.drop();
        return;
      }
      call = this.open();
    }
    const frames = packFrames(this.queue, this.cfg.maxFrameBytes);
    this.drop();
    for (const f of frames) {
      if (!call.write(f)) this.draining = true;
    }
    if (this.draining) {
      call.once('drain', () => {
        this.draining = false;
        this.flush();
      });
    }
  }

  private drop(): void {
    this.queue = [];
    this.queuedBytes = 0;
  }

  private open(): grpc.ClientWritableStream<Buffer> {
    this.client ??= new grpc.Client(this.address, this.cfg.credentials, {
      'grpc.max_send_message_length': this.cfg.maxFrameBytes + 1024,
      'grpc.max_receive_message_length': 1024,
      // Loopback and LAN peers: find a dead peer within seconds, reconnect fast after a restart.
      'grpc.keepalive_time_ms': 5_000,
      'grpc.keepalive_timeout_ms': 3_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': MAX_BACKOFF_MS,
    });
    const md = new grpc.Metadata();
    md.set('raft-from', this.self);
    const opened = Date.now();
    const call = this.client.makeClientStreamRequest<Buffer, Buffer>(PATH, identity, identity, md, {}, (err) => {
      if (this.call === call) {
        this.call = null;
        this.draining = false;
      }
      if (err === null || this.closed) return;
      // A stream that lived a while was healthy: start the backoff over.
      if (Date.now() - opened > 2 * MAX_BACKOFF_MS) this.backoffMs = 0;
      this.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, this.backoffMs * 2));
      this.retryAt = Date.now() + this.backoffMs;
      this.onError(err);
    });
    // Failures are reported once, through the callback above.
    call.on('error', () => undefined);
    this.call = call;
    return call;
  }

  close(): void {
    this.closed = true;
    this.drop();
    this.call?.end();
    this.call = null;
    this.client?.close();
    this.client = null;
  }
}

export class GrpcTransport implements Transport {
  private readonly server: grpc.Server;
  private readonly links = new Map<NodeId, PeerLink>();
  private addresses: AddressBook = new Map();
  private boundPort = 0;
  private readonly maxFrameBytes: number;
  private readonly maxMessageBytes: number;
  private readonly maxQueueBytes: number;
  /** Test hook: traffic to and from these peers is dropped, as a network partition would. */
  readonly blocked = new Set<NodeId>();

  constructor(private readonly opts: GrpcTransportOptions) {
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULTS.maxFrameBytes;
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULTS.maxMessageBytes;
    this.maxQueueBytes = opts.maxQueueBytes ?? DEFAULTS.maxQueueBytes;
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': this.maxFrameBytes + 1024 });
  }

  /** The port actually bound (useful with port 0). */
  port(): number {
    return this.boundPort;
  }

  start(deliver: (message: Message) => void): Promise<void> {
    this.server.addService(SERVICE, {
      stream: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const reader = new FrameReader(this.maxMessageBytes);
        let failed = false;
        const memberOf = this.opts.credentials?.memberOf;
        let speaker: NodeId | undefined;
        if (memberOf !== undefined) {
          const cert = call.getAuthContext()?.sslPeerCertificate;
          speaker = cert === undefined ? undefined : memberOf(cert);
          if (speaker === undefined) {
            failed = true;
            call.on('error', () => undefined);
            callback({ code: grpc.status.PERMISSION_DENIED, details: `raft transport: the peer's certificate (${cert?.subject?.CN ?? 'none'}) names no member of this cluster` });
            return;
          }
        }
        call.on('data', (frame: Buffer) => {
          if (failed) return;
          try {
            for (const bytes of reader.read(frame)) {
              const m = decodeMessage(bytes);
              if (speaker !== undefined && m.from !== speaker) throw new ImpersonationError(`raft transport: member ${speaker} sent a message from ${m.from}; its stream is closed`);
              if (m.to !== this.opts.id || this.blocked.has(m.from)) continue;
              deliver(m);
            }
          } catch (err) {
            // A peer speaking something else, or over the limit: end its stream; it reconnects.
            failed = true;
            const code = err instanceof ImpersonationError ? grpc.status.PERMISSION_DENIED : grpc.status.INVALID_ARGUMENT;
            callback({ code, details: err instanceof Error ? err.message : String(err) });
          }
        });
        call.on('end', () => {
          if (!failed) callback(null, Buffer.alloc(0));
        });
        call.on('error', () => undefined);
      },
    });
    const creds = this.opts.credentials?.server ?? grpc.ServerCredentials.createInsecure();
    return new Promise((resolve, reject) => {
      this.server.bindAsync(this.opts.listen, creds, (err, port) => {
        if (err !== null) reject(new Error(`raft transport: cannot listen on ${this.opts.listen}: ${err.message}`));
        else {
          this.boundPort = port;
          resolve();
        }
      });
    });
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      if (this.blocked.has(m.to)) continue;
      const link = this.link(m.to);
      if (link === null) continue;
      const bytes = encodeMessage(m);
      if (bytes.length > this.maxMessageBytes) {
        this.opts.onPeerError?.(m.to, new Error(`raft transport: ${m.type} of ${bytes.length} bytes exceeds the limit of ${this.maxMessageBytes}; dropped`));
        continue;
      }
      link.enqueue(bytes);
    }
  }

  setAddresses(addresses: AddressBook): void {
    this.addresses = new Map(addresses);
    for (const [peer, link] of this.links) {
      if (this.addresses.get(peer) !== link.address) {
        link.close();
        this.links.delete(peer);
      }
    }
  }

  private link(peer: NodeId): PeerLink | null {
    const existing = this.links.get(peer);
    if (existing !== undefined) return existing;
    const address = this.addresses.get(peer);
    if (address === undefined || peer === this.opts.id) return null;
    const link = new PeerLink(
      this.opts.id,
      peer,
      address,
      {
        maxFrameBytes: this.maxFrameBytes,
        maxMessageBytes: this.maxMessageBytes,
        maxQueueBytes: this.maxQueueBytes,
        credentials: this.opts.credentials?.channel ?? grpc.credentials.createInsecure(),
      },
      (err) => this.opts.onPeerError?.(peer, err),
    );
    this.links.set(peer, link);
    return link;
  }

  async stop(): Promise<void> {
    for (const link of this.links.values()) link.close();
    this.links.clear();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
