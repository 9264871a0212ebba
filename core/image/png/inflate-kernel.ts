// The zlib inflater of ./inflate.ts run by the wasm kernel (assembly/image/inflate.ts): the same answers,
// output and refusals, several times faster. The stream's state stays here, in this object's buffers (the
// window the decoder hands out, the unread input, a small state block): each run copies the state, the
// last 32 KiB of output and the unread input into the kernels' scratch, inflates, and copies the state and
// the new output back, so that concurrent decodes share the one instance.

import type { DecodeKernels } from "../kernels.ts";
import { HISTORY_BYTES, Inflating, MAX_MATCH, type ZlibStream } from "./inflate.ts";

// assembly/image/inflate.ts: the state block's size and the words read or set here.
const STATE_BYTES = 384;
const S_ADLER_A = 5;
const S_TRUNCATED = 11;
const S_READ = 12;
const S_WRITTEN = 13;
const S_STREAM = 14;

// Slack after the window and the input in scratch (vector stores past a match's end).
const SLACK = 16;
// The most input and output room a kernel call takes, which bounds the scratch it needs.
const INPUT_BYTES = 64 * 1024;
const ROOM_BYTES = 256 * 1024;
const WINDOW_BYTES = (HISTORY_BYTES + ROOM_BYTES + MAX_MATCH + SLACK + 15) & ~15;

// The scratch a run needs.
export const KERNEL_INFLATER_SCRATCH_BYTES = STATE_BYTES + WINDOW_BYTES + INPUT_BYTES + SLACK;

// Numbers the streams, for the kernel to know the tables it last built (never 0).
let streams = 0;

export class KernelInflater implements ZlibStream {
  // Output: window[written - HISTORY_BYTES-ish, taken) is history, [taken, written) not yet taken.
  readonly window: Uint8Array;
  private written = 0;
  private taken = 0;
  private input: Uint8Array;
  private pos = 0;
  private end = 0;
  private readonly state = new Int32Array(STATE_BYTES / 4);
  private readonly kernels: DecodeKernels;

  // `window`: at least HISTORY_BYTES + 2 x MAX_MATCH bytes, as Inflater's.
  constructor(kernels: DecodeKernels, window: Uint8Array, inputBytes = 8192) {
    if (window.length < HISTORY_BYTES + 2 * MAX_MATCH) throw new RangeError("the inflater's window is too small");
    this.kernels = kernels;
    this.window = window;
    this.input = new Uint8Array(inputBytes);
    this.state[S_ADLER_A] = 1;
    streams = (streams % 0x7fffffff) + 1;
    this.state[S_STREAM] = streams;
  }

  feed(data: Uint8Array): void {
    const unread = this.end - this.pos;
    if (unread + data.length > this.input.length) {
      const grown = new Uint8Array(Math.max(2 * this.input.length, unread + data.length));
      grown.set(this.input.subarray(this.pos, this.end));
      this.input = grown;
    } else if (this.pos > 0) {
      this.input.copyWithin(0, this.pos, this.end);
    }
    this.pos = 0;
    this.end = unread;
    this.input.set(data, this.end);
    this.end += data.length;
  }

  get unread(): number {
    return this.end - this.pos;
  }

  get truncated(): boolean {
    return this.state[S_TRUNCATED] === 1;
  }

  take(): Uint8Array {
    const out = this.window.subarray(this.taken, this.written);
    this.taken = this.written;
    return out;
  }

  run(final: boolean): Inflating {
    if (this.taken < this.written) throw new RangeError("take() the output before running again");
    const window = this.window;
    // Past half the window (or too near its end), the last HISTORY_BYTES move to its start: a copy per half
    // window of output.
    if (
      this.written > HISTORY_BYTES &&
      (this.written > window.length >> 1 || this.written > window.length - 2 * MAX_MATCH)
    ) {
      window.copyWithin(0, this.written - HISTORY_BYTES, this.written);
      this.written = this.taken = HISTORY_BYTES;
    }
    const state = this.state;
    // At most INPUT_BYTES of input a call: again while the input in hand was not all given.
    for (;;) {
      const hist = Math.min(this.written, HISTORY_BYTES);
      const room = Math.min(window.length - MAX_MATCH - this.written, ROOM_BYTES);
      if (room <= 0) return Inflating.WindowFull;
      const unread = this.end - this.pos;
      const n = Math.min(unread, INPUT_BYTES);
      const { at, heap } = this.kernels.area(KERNEL_INFLATER_SCRATCH_BYTES);
      const windowAt = at + STATE_BYTES;
      const inputAt = windowAt + WINDOW_BYTES;
      heap.set(new Uint8Array(state.buffer), at);
      heap.set(window.subarray(this.written - hist, this.written), windowAt);
      heap.set(this.input.subarray(this.pos, this.pos + n), inputAt);
      const last = n === unread;
      const result = this.kernels.exports.inflate(at, inputAt, n, windowAt, hist, room, final && last ? 1 : 0);
      state.set(new Int32Array(heap.buffer, at, state.length));
      const wrote = state[S_WRITTEN];
      window.set(heap.subarray(windowAt + hist, windowAt + hist + wrote), this.written);
      this.written += wrote;
      this.pos += state[S_READ];
      if (result !== Inflating.NeedInput || last) return result as Inflating;
    }
  }
}
