// Testbeds are torn down even when a test forgets close(), throws, or the process gets
// SIGINT/SIGTERM/SIGHUP: cleanup then is synchronous (the event loop may be gone).
// The handlers are installed while at least one testbed is open, and a signal is
// re-raised after cleanup when nobody else listens, so the default behaviour (exit) holds.

export interface Closable {
  closeSync(): void;
}

const open = new Set<Closable>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let installed = false;

function closeAll(): void {
  for (const testbed of [...open]) {
    try {
      testbed.closeSync();
    } catch (err) {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  // Counted before closing: closing the last testbed uninstalls this listener.
  const alone = process.listenerCount(sig) === 1;
  closeAll();
  if (alone) {
    uninstall();
    // Re-raised on the next turn: until then Node still has its handler installed and
    // would swallow the signal.
    setImmediate(() => process.kill(process.pid, sig));
  }
}

const onExit = (): void => closeAll();

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', onExit);
  for (const sig of SIGNALS) process.on(sig, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', onExit);
  for (const sig of SIGNALS) process.off(sig, onSignal);
}

export function track(testbed: Closable): void {
  open.add(testbed);
  install();
}

export function untrack(testbed: Closable): void {
  open.delete(testbed);
  if (open.size === 0) uninstall();
}
