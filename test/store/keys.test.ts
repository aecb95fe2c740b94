// Autolock: the data key sealed under an unlock key the operator holds. A locked manager's
// store does not open without it (Docker's words), a wrong key is refused, the key can be
// rotated or autolock turned off, and the data key never stands in the file in the clear.
import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ClusterStore, formatUnlockKey, loadOrCreateDataKey, LOCKED_MESSAGE, newUnlockKey, parseUnlockKey, SwarmLockedError, writeDataKey } from '../../src/store/index.js';
import { openOneManager } from './one-manager.js';

test('unlock keys: Docker\'s SWMKEY-1 form read and written; malformed ones refused with what to do', () => {
  const documented = 'SWMKEY-1-fySn8TY4w5lKcWcJPIpKufejh9hxx5KYwx6XZigx3Q4';
  const key = parseUnlockKey(`${documented}\n`);
  assert.equal(key.length, 32);
  assert.equal(formatUnlockKey(key), documented);
  const fresh = newUnlockKey();
  assert.deepEqual(parseUnlockKey(formatUnlockKey(fresh)), fresh);
  for (const bad of ['', 'SWMKEY-2-fySn8TY4w5lKcWcJPIpKufejh9hxx5KYwx6XZigx3Q4', documented.slice(0, -1), `${documented}=`, documented.replace('f', '*')]) {
    assert.throws(() => parseUnlockKey(bad), (err: unknown) => err instanceof SwarmLockedError && err.reason === 'invalidKey' && /invalid unlock key: .*docker swarm unlock-key/.test(err.message), bad);
  }
});

function openStore(dir: string, unlockKey?: Uint8Array): Promise<ClusterStore> {
  return openOneManager(dir, unlockKey === undefined ? {} : { unlockKey });
}

test('autolock: a locked store opens only with its unlock key; rotation and turning it off', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'autolock-'));
  const keyFile = join(dir, 'keys', 'dek.json');
  try {
    const unlock = newUnlockKey();
    const first = await openStore(dir, unlock);
    await first.create('secret', { spec: { annotations: { name: 'db-password' }, data: Buffer.from('hunter2').toString('base64') } });
    await first.close();

    const dek = await loadOrCreateDataKey(keyFile, { unlockKey: unlock });
    const file = await readFile(keyFile, 'utf8');
    assert.ok(!file.includes(Buffer.from(dek.key).toString('base64')), 'the data key stands in the file in the clear');
    assert.ok(!/"key"/.test(file));

    await assert.rejects(openStore(dir), (err: unknown) => err instanceof SwarmLockedError && err.reason === 'locked' && err.message === LOCKED_MESSAGE);
    await assert.rejects(openStore(dir, newUnlockKey()), (err: unknown) => err instanceof SwarmLockedError && err.reason === 'invalidKey' && /could not be unlocked: invalid key/.test(err.message));

    const again = await openStore(dir, unlock);
    assert.equal(again.byName('secret', 'db-password')?.spec.annotations.name, 'db-password');
    await again.close();

    // `docker swarm unlock-key --rotate`: the same data key, sealed under a new unlock key.
    const rotated = newUnlockKey();
    await writeDataKey(keyFile, await loadOrCreateDataKey(keyFile, { unlockKey: unlock }), rotated);
    await assert.rejects(openStore(dir, unlock), SwarmLockedError);
    const afterRotation = await openStore(dir, rotated);
    assert.ok(afterRotation.byName('secret', 'db-password'));
    await afterRotation.close();

    // `docker swarm update --autolock=false`: stored as is again, and opens without a key.
    await writeDataKey(keyFile, await loadOrCreateDataKey(keyFile, { unlockKey: rotated }));
    const unlocked = await openStore(dir);
    assert.ok(unlocked.byName('secret', 'db-password'));
    await unlocked.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
