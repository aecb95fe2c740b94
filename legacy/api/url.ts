// The request target of an API call: its path without the /vX.Y prefix, that version,
// and the query. Pure.

export interface Parsed {
  path: string;
  version: string | undefined;
  query: URLSearchParams;
}

/**
 * A request target that URL parsing would leave as it is: no authority ("//"), no
 * backslash, none of the characters it escapes, no fragment. Dot segments ("/.", "/%2e")
 * are checked apart.
 */
const plainTarget = /^\/(?!\/)[!$-;=?-[\]_a-z|~]*$/;
const dotSegment = /\/(?:\.|%2e)/i;
const versioned = /^\/v(\d+\.\d+)(\/.*)$/;

/** Splits a request target as the URL class would read it, without the URL class when it is plain. */
export function parseUrl(rawUrl: string): Parsed {
  let pathname: string;
  let query: URLSearchParams;
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  // Every API call parses its URL: the common case skips the URL class, which costs more.
  if (plainTarget.test(rawUrl) && !dotSegment.test(rawPath)) {
    pathname = rawPath;
    query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
  } else {
    const url = new URL(rawUrl, 'http://swarm');
    pathname = url.pathname;
    query = url.searchParams;
  }
  const m = versioned.exec(pathname);
  return { path: m?.[2] ?? pathname, version: m?.[1], query };
}
