import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUrl } from '../../../legacy/api/url.js';

/** What the manager read before the plain-target shortcut: everything through the URL class. */
function viaUrlClass(rawUrl: string): { path: string; version: string | undefined; query: string[][] } {
  const url = new URL(rawUrl, 'http://swarm');
  const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(url.pathname);
  return { path: m?.[2] ?? url.pathname, version: m?.[1], query: [...url.searchParams] };
}

function read(rawUrl: string): { path: string; version: string | undefined; query: string[][] } {
  const p = parseUrl(rawUrl);
  return { path: p.path, version: p.version, query: [...p.query] };
}

test('the version prefix, the path and the query', () => {
  assert.deepEqual(read('/v1.41/containers/abc/json?size=1'), { path: '/containers/abc/json', version: '1.41', query: [['size', '1']] });
  assert.deepEqual(read('/containers/json'), { path: '/containers/json', version: undefined, query: [] });
  assert.deepEqual(read('/v1.24/containers/node1/web/logs?follow=1&tail=all'), { path: '/containers/node1/web/logs', version: '1.24', query: [['follow', '1'], ['tail', 'all']] });
  assert.deepEqual(read(`/v1.41/containers/json?filters=${encodeURIComponent('{"name":["^/web$"]}')}`).query, [['filters', '{"name":["^/web$"]}']]);
});

test('every target reads as the URL class reads it, plain or not', () => {
  const targets = [
    '/_ping',
    '/v1.41/info',
    '/v1.41/containers/web.1/json',
    '/v1.41/containers/node-1/web_2/json?all=1&limit=-1',
    '/v1.41/containers/a%2Fb/json',
    '/v1.41/images/localhost:5000/busybox:latest/json',
    '/v1.41/images/sha256:0123abcd/history',
    '/v1.41/containers/json?filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D',
    "/v1.41/containers/json?name=it's",
    '/v1.41/containers/json?a=1+2&b=%20&c',
    '/v1.41/containers/x/../json',
    '/v1.41/containers/./x/json',
    '/v1.41/containers/%2e%2e/json',
    '/v1.41/containers/.hidden/json',
    '/v1.41/containers/a b/json',
    '/v1.41/containers/{x}/json',
    '/v1.41/containers/"x"/json',
    '/v1.41/containers/a\\b/json',
    '/v1.41/containers/caf\u00e9/json',
    '/v1.41/containers/x/json?q=caf\u00e9',
    '/v1.41/containers/x/json?q="a"&r=<b>',
    '/v1.41/containers/x/json#frag',
    '//evil/v1.41/info',
    '/v1.41//containers/json',
    '/v1.41',
    '/v1.41/',
    '/v9.99/info',
    '/vx.y/info',
  ];
  for (const t of targets) assert.deepEqual(read(t), viaUrlClass(t), t);
});
