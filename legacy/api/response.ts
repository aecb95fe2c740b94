// The manager's ServerResponse: every answer names the manager in `Server`, unless it
// relays an engine's own. The header is added as the head is written, not with setHeader
// when the call arrives: one header set that way sends every writeHead down Node's slow
// path, which merges the answer's headers one by one, and a proxied inspect pays for it.
import http from 'node:http';
import type { IncomingMessage, OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http';

export const serverHeader = 'swarmshift';

type Headers = OutgoingHttpHeaders | OutgoingHttpHeader[];

function namesServer(headers: Headers): boolean {
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      if (typeof name === 'string' && name.length === 6 && name.toLowerCase() === 'server') return true;
    }
    return false;
  }
  for (const name of Object.keys(headers)) if (name.length === 6 && name.toLowerCase() === 'server') return true;
  return false;
}

export class ManagerResponse<Request extends IncomingMessage = IncomingMessage> extends http.ServerResponse<Request> {
  override writeHead(statusCode: number, statusMessage?: string, headers?: Headers): this;
  override writeHead(statusCode: number, headers?: Headers): this;
  override writeHead(statusCode: number, messageOrHeaders?: string | Headers, maybeHeaders?: Headers): this {
    const message = typeof messageOrHeaders === 'string' ? messageOrHeaders : undefined;
    const headers = typeof messageOrHeaders === 'string' ? maybeHeaders : messageOrHeaders;
    return message === undefined ? super.writeHead(statusCode, this.withServer(headers)) : super.writeHead(statusCode, message, this.withServer(headers));
  }

  private withServer(headers: Headers | undefined): Headers | undefined {
    if (this.hasHeader('server')) return headers;
    if (headers === undefined) return ['Server', serverHeader];
    if (namesServer(headers)) return headers;
    if (!Array.isArray(headers)) return { ...headers, Server: serverHeader };
    // A list of [name, value] pairs is appended as it is; a flat list gets one more pair.
    if (headers.length > 0 && Array.isArray(headers[0])) return headers;
    return [...headers, 'Server', serverHeader];
  }
}
