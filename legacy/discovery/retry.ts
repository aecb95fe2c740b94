// What every KV store's client needs to ride out an unreachable store: a pause that an
// abort cuts short, a wake-up that is not lost, and retry with capped backoff.
import { log } from '../../src/log.js';

export const BACKOFF_FIRST_MS = 100;
export const BACKOFF_CAP_MS = 5000;

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Waits ms, or less when signal aborts; never rejects. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** A level-triggered wake-up: notify() before wait() is not lost. */
export class Wakeup {
  private pending = false;
  private waiter: (() => void) | undefined;

  notify(): void {
    this.pending = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async wait(signal: AbortSignal): Promise<void> {
    if (!this.pending && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          this.waiter = undefined;
          resolve();
        };
        this.waiter = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    this.pending = false;
  }
}

/**
 * Runs fn until it succeeds, with backoff doubling up to 5 s; undefined when signal aborts
 * first (the value is wrapped: it may itself be undefined). The first failure of a streak
 * is logged at warn, the rest at debug.
 */
export async function untilDone<T>(store: string, signal: AbortSignal, what: string, fn: () => Promise<T>): Promise<{ value: T } | undefined> {
  let delay = BACKOFF_FIRST_MS;
  let failures = 0;
  while (!signal.aborted) {
    try {
      const value = await fn();
      if (failures > 0) log.info(`${store} reachable again`, { op: what, failures });
      return { value };
    } catch (err) {
      if (signal.aborted) return undefined;
      (failures === 0 ? log.warn : log.debug)(`${store} unreachable, retrying`, { op: what, err: errText(err), retryMs: delay });
      failures++;
      await pause(delay, signal);
      delay = Math.min(BACKOFF_CAP_MS, delay * 2);
    }
  }
  return undefined;
}
