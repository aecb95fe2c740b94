import { test } from 'node:test';
import assert from 'node:assert/strict';
import { humanDuration, statusText } from '../../src/docker/status.js';

test('human durations read as the docker CLI prints them', () => {
  assert.equal(humanDuration(400), 'Less than a second');
  assert.equal(humanDuration(1000), '1 second');
  assert.equal(humanDuration(42_000), '42 seconds');
  assert.equal(humanDuration(90_000), 'About a minute');
  assert.equal(humanDuration(5 * 60_000), '5 minutes');
  assert.equal(humanDuration(70 * 60_000), 'About an hour');
  assert.equal(humanDuration(5 * 3_600_000), '5 hours');
  assert.equal(humanDuration(3 * 24 * 3_600_000), '3 days');
  assert.equal(humanDuration(20 * 24 * 3_600_000), '2 weeks');
  assert.equal(humanDuration(100 * 24 * 3_600_000), '3 months');
  assert.equal(humanDuration(800 * 24 * 3_600_000), '2 years');
});

test('status text is computed from the state at the time it is served', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const zero = '0001-01-01T00:00:00Z';
  assert.equal(statusText({ Status: 'created', Running: false, StartedAt: zero, FinishedAt: zero }, now), 'Created');
  assert.equal(statusText({ Status: 'running', Running: true, StartedAt: '2026-01-01T11:55:00Z' }, now), 'Up 5 minutes');
  assert.equal(statusText({ Status: 'running', Running: true, StartedAt: '2026-01-01T11:59:30Z', Health: { Status: 'healthy' } }, now), 'Up 30 seconds (healthy)');
  assert.equal(statusText({ Status: 'paused', Running: true, Paused: true, StartedAt: '2026-01-01T10:00:00Z' }, now), 'Up 2 hours (Paused)');
  assert.equal(statusText({ Status: 'restarting', Running: true, Restarting: true, ExitCode: 1, FinishedAt: '2026-01-01T11:59:58Z' }, now), 'Restarting (1) 2 seconds ago');
  assert.equal(statusText({ Status: 'exited', Running: false, ExitCode: 137, StartedAt: '2026-01-01T09:00:00Z', FinishedAt: '2026-01-01T10:00:00Z' }, now), 'Exited (137) 2 hours ago');
  assert.equal(statusText({ Status: 'dead', Running: false, Dead: true }, now), 'Dead');
});
