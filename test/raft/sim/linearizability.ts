// A linearizability checker for client histories: the search of Wing & Gong (1993) with
// Lowe's memoisation of (linearized set, state) pairs (2017), the approach Porcupine takes.
// Histories are partitioned by key first (P-compositionality): a KV store is linearizable
// iff each key's sub-history is, and the search is exponential only per partition.

export interface Model<State, Input, Output> {
  readonly init: State;
  /** Whether `output` is a legal answer to `input` in `state`, and the state after. */
  step(state: State, input: Input, output: Output): { ok: boolean; next: State };
  /** A string that identifies the state, for memoisation. */
  key(state: State): string;
}

export interface Operation<Input, Output> {
  readonly input: Input;
  readonly output: Output;
  /** When the client invoked the operation. */
  readonly call: number;
  /** When the client saw the answer; Infinity when it never did (the effect may or may not exist). */
  readonly ret: number;
}

export type CheckOutcome = { readonly result: 'ok' } | { readonly result: 'illegal' } | { readonly result: 'gaveUp'; readonly steps: number };

interface Cell {
  readonly op: number;
  readonly isCall: boolean;
  /** For a call, its return cell. */
  match: Cell | null;
  prev: Cell | null;
  next: Cell | null;
}

export function checkLinearizable<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], maxSteps = 2_000_000): CheckOutcome {
  if (ops.length === 0) return { result: 'ok' };
  // Calls sort before returns at the same instant: treating touching operations as
  // concurrent only ever allows more orders, so it cannot produce a false alarm.
  const events = ops.flatMap((op, i) => [
    { op: i, isCall: true, time: op.call },
    { op: i, isCall: false, time: op.ret },
  ]);
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));

  const head: Cell = { op: -1, isCall: false, match: null, prev: null, next: null };
  let tail = head;
  const calls = new Map<number, Cell>();
  for (const ev of events) {
    const cell: Cell = { op: ev.op, isCall: ev.isCall, match: null, prev: tail, next: null };
    tail.next = cell;
    tail = cell;
    if (ev.isCall) calls.set(ev.op, cell);
    else {
      const call = calls.get(ev.op);
      if (call !== undefined) call.match = cell;
    }
  }

  const lift = (call: Cell): void => {
    const ret = call.match;
    if (call.prev !== null) call.prev.next = call.next;
    if (call.next !== null) call.next.prev = call.prev;
    if (ret !== null) {
      if (ret.prev !== null) ret.prev.next = ret.next;
      if (ret.next !== null) ret.next.prev = ret.prev;
    }
  };
  const unlift = (call: Cell): void => {
    const ret = call.match;
    if (ret !== null) {
      if (ret.prev !== null) ret.prev.next = ret;
      if (ret.next !== null) ret.next.prev = ret;
    }
    if (call.prev !== null) call.prev.next = call;
    if (call.next !== null) call.next.prev = call;
  };

  const words = new Uint32Array(Math.ceil(ops.length / 32));
  const flip = (op: number): void => {
    const w = op >>> 5;
    words[w] = (words[w] ?? 0) ^ (1 << (op & 31));
  };
  const seen = new Set<string>();
  const stack: { call: Cell; state: S }[] = [];
  let state = model.init;
  let cell = head.next;
  let steps = 0;

  while (head.next !== null) {
    if (++steps > maxSteps) return { result: 'gaveUp', steps };
    if (cell !== null && cell.isCall) {
      const op = ops[cell.op];
      if (op === undefined) throw new Error('linearizability: operation index out of range');
      const { ok, next } = model.step(state, op.input, op.output);
      let advanced = false;
      if (ok) {
        flip(cell.op);
        const memo = `${words.join(',')}|${model.key(next)}`;
        if (!seen.has(memo)) {
          seen.add(memo);
          stack.push({ call: cell, state });
          state = next;
          lift(cell);
          cell = head.next;
          advanced = true;
        } else flip(cell.op);
      }
      if (!advanced) cell = cell.next;
    } else {
      // The earliest pending return (or the end) belongs to an operation we have not placed: every
      // order so far is wrong. Undo the last choice and try the next candidate.
      const top = stack.pop();
      if (top === undefined) return { result: 'illegal' };
      state = top.state;
      flip(top.call.op);
      unlift(top.call);
      cell = top.call.next;
    }
  }
  return { result: 'ok' };
}
