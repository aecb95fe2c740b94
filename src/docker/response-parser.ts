// Reading an engine's HTTP/1.1 answer off a raw socket: the status line and headers, and
// the body's framing (sized, chunked, until the connection closes, or none), so that the
// forwarder can tell where one answer ends and the connection can carry the next call.
// Pure: bytes in, a head or body pieces out; no sockets.

export class HttpParseError extends Error {
  override readonly name = 'HttpParseError';
}

export type BodyFraming =
  | { kind: 'empty' }
  | { kind: 'sized'; length: number }
  | { kind: 'chunked' }
  | { kind: 'until-close' };

export interface ResponseHead {
  status: number;
  /** Header names and values in the order and case the engine sent them: name, value, name, value... */
  rawHeaders: string[];
  framing: BodyFraming;
  /** Whether the connection may carry another call once this answer's body is read. */
  keepAlive: boolean;
  /** Bytes the head took, the blank line included. */
  size: number;
}

/** A head larger than this is refused (Go's servers send a few hundred bytes). */
export const maxHeadSize = 64 * 1024;
/** A chunk-size line or a trailer section larger than this is refused. */
const maxLineSize = 4096;
const maxTrailerSize = 64 * 1024;

const CR = 0x0d;
const LF = 0x0a;
const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/;
const headTerminator = Buffer.from('\r\n\r\n', 'latin1');
/**
 * `name: value`: the name a token (RFC 9110), the value without the spaces and tabs
 * around it. `.` matches neither CR nor LF, so a bare one (a broken line end) fails the
 * line, as does a leading space (obsolete line folding).
 */
const headerLine = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/;

function headEnd(buf: Buffer): number {
  const i = buf.indexOf(headTerminator);
  return i < 0 ? -1 : i + 4;
}

/**
 * Parses the answer's head at the start of `buf`. Undefined while the head is incomplete;
 * throws HttpParseError when it is malformed or too large. `requestMethod` decides whether
 * a body follows (never after HEAD).
 *
 * Regular expressions and built-ins rather than loops over characters: each proxied call
 * parses one head, and until V8 has optimized this code (after a thousand calls or so) a
 * loop in the interpreter costs many times what native matching does.
 */
export function parseResponseHead(buf: Buffer, requestMethod: string): ResponseHead | undefined {
  const end = headEnd(buf);
  if (end < 0) {
    if (buf.length > maxHeadSize) throw new HttpParseError(`answer head larger than ${maxHeadSize} bytes`);
    return undefined;
  }
  if (end > maxHeadSize) throw new HttpParseError(`answer head larger than ${maxHeadSize} bytes`);
  const text = buf.toString('latin1', 0, end - 4);
  if (text.includes('\0')) throw new HttpParseError('a NUL in the answer head');
  const lines = text.split('\r\n');
  const first = statusLine.exec(lines[0] ?? '');
  if (!first) throw new HttpParseError(`malformed status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const minor = first[1];
  const status = Number(first[2]);
  if (status < 100) throw new HttpParseError(`invalid status ${status}`);

  const rawHeaders: string[] = [];
  let contentLength: number | undefined;
  let transferEncoding: string | undefined;
  let connection = '';
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const m = headerLine.exec(line);
    const name = m?.[1];
    const value = m?.[2];
    if (name === undefined || value === undefined) throw new HttpParseError(`malformed header line ${JSON.stringify(line.slice(0, 80))}`);
    rawHeaders.push(name, value);
    // Only three names matter here: skip lowercasing the others.
    if (name.length !== 14 && name.length !== 17 && name.length !== 10) continue;
    switch (name.toLowerCase()) {
      case 'content-length': {
        if (!/^\d{1,15}$/.test(value)) throw new HttpParseError(`invalid Content-Length ${JSON.stringify(value.slice(0, 40))}`);
        const n = Number(value);
        if (contentLength !== undefined && contentLength !== n) throw new HttpParseError('conflicting Content-Length headers');
        contentLength = n;
        break;
      }
      case 'transfer-encoding':
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      case 'connection':
        connection = connection === '' ? value : `${connection}, ${value}`;
        break;
    }
  }

  let keepAlive = minor === '1';
  if (connection !== '') {
    const tokens = connection.toLowerCase().split(',').map((t) => t.trim());
    keepAlive = minor === '1' ? !tokens.includes('close') : tokens.includes('keep-alive');
  }
  let framing: BodyFraming;
  if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304) {
    framing = { kind: 'empty' };
  } else if (transferEncoding !== undefined) {
    // Transfer-Encoding wins over Content-Length; anything but a final "chunked" runs
    // until the connection closes (RFC 9112, 6.3).
    const codings = transferEncoding.toLowerCase().split(',').map((t) => t.trim());
    if (codings[codings.length - 1] === 'chunked') framing = { kind: 'chunked' };
    else framing = { kind: 'until-close' };
    // Both headers at once is how request smuggling starts: never reuse that connection.
    if (contentLength !== undefined) keepAlive = false;
  } else if (contentLength !== undefined) {
    framing = contentLength === 0 ? { kind: 'empty' } : { kind: 'sized', length: contentLength };
  } else {
    framing = { kind: 'until-close' };
  }
  if (framing.kind === 'until-close') keepAlive = false;
  return { status, rawHeaders, framing, keepAlive, size: end };
}

export interface BodyProgress {
  /** Body bytes found in the pushed buffer (views of it, not copies). */
  data: Buffer[];
  /** The body is complete. */
  done: boolean;
  /** Bytes of the pushed buffer after the body's end (another answer nobody asked for). */
  excess: number;
}

/** Splits the bytes after a head into body pieces and tells where the body ends. */
export interface BodyDecoder {
  push(buf: Buffer): BodyProgress;
  /** The connection ended: whether that completes the body (only for until-close). */
  ended(): boolean;
}

export function bodyDecoder(framing: BodyFraming): BodyDecoder {
  switch (framing.kind) {
    case 'empty':
      return { push: (buf) => ({ data: [], done: true, excess: buf.length }), ended: () => true };
    case 'sized':
      return sizedDecoder(framing.length);
    case 'chunked':
      return new ChunkedDecoder();
    case 'until-close':
      return { push: (buf) => ({ data: buf.length > 0 ? [buf] : [], done: false, excess: 0 }), ended: () => true };
    default: {
      const unknown: never = framing;
      throw new Error(`unknown framing ${JSON.stringify(unknown)}`);
    }
  }
}

function sizedDecoder(length: number): BodyDecoder {
  let remaining = length;
  return {
    push(buf) {
      const take = Math.min(remaining, buf.length);
      remaining -= take;
      const data = take === 0 ? [] : [take === buf.length ? buf : buf.subarray(0, take)];
      return { data, done: remaining === 0, excess: buf.length - take };
    },
    ended: () => remaining === 0,
  };
}

type ChunkState = 'size' | 'data' | 'data-end' | 'trailer' | 'done';

const chunkSizeLine = /^([0-9a-fA-F]+)[ \t]*(?:;.*)?$/;

/** Transfer-Encoding: chunked, decoded incrementally: a buffer may end anywhere. */
export class ChunkedDecoder implements BodyDecoder {
  private state: ChunkState = 'size';
  /** The line being read (a chunk-size line or a trailer line), across buffers. */
  private line = '';
  /** A CR ended the previous buffer: the LF must start this one. */
  private pendingCr = false;
  private remaining = 0;
  private trailerBytes = 0;
  /** CRLF bytes still expected after a chunk's data. */
  private dataEnd = 0;

  push(buf: Buffer): BodyProgress {
    const data: Buffer[] = [];
    let i = 0;
    while (i < buf.length && this.state !== 'done') {
      switch (this.state) {
        case 'size':
        case 'trailer': {
          const lineEnd = this.readLine(buf, i);
          if (lineEnd < 0) {
            i = buf.length;
            break;
          }
          i = lineEnd;
          const line = this.line;
          this.line = '';
          if (this.state === 'size') this.onSizeLine(line);
          else if (line === '') this.state = 'done';
          break;
        }
        case 'data': {
          const take = Math.min(this.remaining, buf.length - i);
          data.push(buf.subarray(i, i + take));
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            this.state = 'data-end';
            this.dataEnd = 2;
          }
          break;
        }
        case 'data-end': {
          const want = this.dataEnd === 2 ? CR : LF;
          if (buf[i] !== want) throw new HttpParseError('chunk data not followed by CRLF');
          i++;
          this.dataEnd--;
          if (this.dataEnd === 0) this.state = 'size';
          break;
        }
      }
    }
    return { data, done: this.state === 'done', excess: buf.length - i };
  }

  ended(): boolean {
    return this.state === 'done';
  }

  /** Appends bytes up to a CRLF to `line`; returns the index after the LF, or -1 if the line goes on. */
  private readLine(buf: Buffer, from: number): number {
    let i = from;
    if (this.pendingCr) {
      if (buf[i] !== LF) throw new HttpParseError('bare CR in chunked framing');
      this.pendingCr = false;
      return i + 1;
    }
    const nl = buf.indexOf(LF, i);
    const stop = nl < 0 ? buf.length : nl;
    const text = buf.toString('latin1', i, stop);
    if (nl < 0) {
      // The buffer may end between the CR and the LF.
      if (text.endsWith('\r')) {
        this.appendLine(text.slice(0, -1));
        this.pendingCr = true;
      } else {
        this.appendLine(text);
      }
      if (this.line.includes('\r')) throw new HttpParseError('bare CR in chunked framing');
      return -1;
    }
    if (!text.endsWith('\r')) throw new HttpParseError('bare LF in chunked framing');
    this.appendLine(text.slice(0, -1));
    if (this.line.includes('\r')) throw new HttpParseError('bare CR in chunked framing');
    i = nl + 1;
    return i;
  }

  private appendLine(text: string): void {
    this.line += text;
    if (this.state === 'size' && this.line.length > maxLineSize) throw new HttpParseError(`chunk-size line longer than ${maxLineSize} bytes`);
    if (this.state === 'trailer') {
      this.trailerBytes += text.length;
      if (this.trailerBytes > maxTrailerSize) throw new HttpParseError(`trailers larger than ${maxTrailerSize} bytes`);
    }
  }

  private onSizeLine(line: string): void {
    const m = chunkSizeLine.exec(line);
    const hex = m?.[1]?.replace(/^0+(?=.)/, '');
    if (hex === undefined) throw new HttpParseError(`malformed chunk size ${JSON.stringify(line.slice(0, 40))}`);
    if (hex.length > 13) throw new HttpParseError(`chunk size ${hex} too large`);
    const size = parseInt(hex, 16);
    if (size === 0) {
      this.state = 'trailer';
      return;
    }
    this.remaining = size;
    this.state = 'data';
  }
}
