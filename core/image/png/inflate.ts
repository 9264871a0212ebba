// A synchronous, resumable zlib inflater (RFC 1950/1951): the IDAT stream of a PNG as it arrives (its
// output written into a window the caller hands out and reuses, so that inflating allocates nothing per
// piece) and PNG's compressed text chunks (inflateZlib). It refuses what zlib's inflate refuses: a bad
// header, a preset dictionary, a bad block or code, a distance too far back, a wrong Adler-32.

export type Inflated = Uint8Array | "error" | "over";

// zlib's window: the farthest a match reaches back.
export const HISTORY_BYTES = 32 * 1024;
// The longest match, written at once: the window keeps this much room past the write position.
export const MAX_MATCH = 258;

// Length and distance codes: base values and extra bits (RFC 1951, 3.2.5).
const LENGTH_BASE = new Uint16Array([
  3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
]);
const LENGTH_EXTRA = new Uint8Array([
  0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
]);
const DIST_BASE = new Uint16Array([
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
  8193, 12289, 16385, 24577,
]);
const DIST_EXTRA = new Uint8Array([
  0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
]);
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

// Codes of up to FAST_BITS bits are decoded by one lookup; longer ones (rare) bit by bit.
const FAST_BITS = 10;
const FAST_MASK = (1 << FAST_BITS) - 1;

// A canonical Huffman code: `fast[next FAST_BITS bits]` is symbol << 4 | length for codes that short (0 for
// longer codes and unused ones), and the counts per length with the symbols in code order for the rest.
interface Code {
  fast: Uint16Array; // [1 << FAST_BITS]
  counts: Uint16Array; // [16]
  symbols: Uint16Array;
}

class Invalid extends Error {}
// Thrown while reading a block header when the input in hand ends inside it.
class Short extends Error {}

// As zlib's inflate_table: an over-subscribed code is refused, and so is an incomplete one, except a literal
// or distance code of one 1-bit code (the fixed codes are built as they are); a code of no symbols is
// accepted until a symbol is read with it.
// `into` is a code whose arrays are reused (a dynamic block's), else the code's arrays are made.
function code(lengths: ArrayLike<number>, n: number, check: "lengths" | "symbols" | "fixed", into?: Code): Code {
  const counts = into ? into.counts.fill(0) : new Uint16Array(16);
  for (let i = 0; i < n; i++) counts[lengths[i]]++;
  counts[0] = 0;
  let max = 0;
  let left = 1;
  for (let len = 1; len < 16; len++) {
    left = (left << 1) - counts[len];
    if (left < 0) throw new Invalid();
    if (counts[len]) max = len;
  }
  if (check !== "fixed" && left > 0 && max > 0 && (check === "lengths" || max !== 1)) throw new Invalid();
  const offsets = OFFSETS.fill(0);
  for (let len = 1; len < 15; len++) offsets[len + 1] = offsets[len] + counts[len];
  const symbols = into ? into.symbols : new Uint16Array(n);
  for (let i = 0; i < n; i++) if (lengths[i] !== 0) symbols[offsets[lengths[i]]++] = i;
  // The lookup table: codes are assigned in order of length then symbol, and read from the stream's low bit
  // up, so each short code fills every entry whose low `len` bits are its bits reversed.
  const fast = into ? into.fast.fill(0) : new Uint16Array(1 << FAST_BITS);
  let next = 0;
  let index = 0;
  for (let len = 1; len <= FAST_BITS; len++) {
    for (let k = 0; k < counts[len]; k++, next++) {
      let reversed = 0;
      for (let b = 0; b < len; b++) reversed |= ((next >> b) & 1) << (len - 1 - b);
      const entry = (symbols[index++] << 4) | len;
      for (let at = reversed; at < fast.length; at += 1 << len) fast[at] = entry;
    }
    next <<= 1;
  }
  return { fast, counts, symbols };
}

const OFFSETS = new Uint16Array(16);

function emptyCode(symbols: number): Code {
  return { fast: new Uint16Array(1 << FAST_BITS), counts: new Uint16Array(16), symbols: new Uint16Array(symbols) };
}

let FIXED: { lit: Code; dist: Code } | null = null;
function fixed(): { lit: Code; dist: Code } {
  if (FIXED === null) {
    const lengths = new Uint8Array(288);
    lengths.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
    FIXED = { lit: code(lengths, 288, "fixed"), dist: code(new Uint8Array(30).fill(5), 30, "fixed") };
  }
  return FIXED;
}

// A code longer than FAST_BITS (or a short one with too few bits in hand), bit by bit: symbol << 4 | length,
// -1 when the bits in hand end first, -2 when no code matches.
function slowDecode(c: Code, bitBuf: number, bitCount: number): number {
  let value = 0;
  let first = 0;
  let index = 0;
  for (let len = 1; len < 16; len++) {
    if (len > bitCount) return -1;
    value |= (bitBuf >>> (len - 1)) & 1;
    const count = c.counts[len];
    if (value - first < count) return (c.symbols[index + value - first] << 4) | len;
    index += count;
    first = (first + count) << 1;
    value <<= 1;
  }
  return -2;
}

// What run() stopped at.
export const Inflating = {
  NeedInput: 0, // every byte in hand is used: feed more, or finish
  WindowFull: 1, // take() the output, then run again
  End: 2, // the stream's end and its Adler-32 have been read
  Failed: 3, // the data is damaged (`truncated` tells a stream cut short from one that is wrong)
} as const;
export type Inflating = (typeof Inflating)[keyof typeof Inflating];

const Stage = { Header: 0, Block: 1, Stored: 2, Codes: 3, Adler: 4, End: 5, Failed: 6 } as const;
type Stage = (typeof Stage)[keyof typeof Stage];

// What the PNG decoder drives: Inflater, or ./inflate-kernel.ts KernelInflater (the same answers).
export interface ZlibStream {
  feed(data: Uint8Array): void;
  readonly unread: number;
  run(final: boolean): Inflating;
  take(): Uint8Array;
  readonly truncated: boolean;
}

export class Inflater implements ZlibStream {
  // Output: window[HISTORY_BYTES-ish before `taken`] is history, [taken, written) not yet taken.
  readonly window: Uint8Array;
  private written = 0;
  private taken = 0;
  private summed = 0; // the Adler-32 covers the output before window[summed]
  private total = 0; // bytes written before window[0]
  // Input: the bytes fed and not yet read, at input[pos, end).
  private input: Uint8Array;
  private pos = 0;
  private end = 0;
  private bitBuf = 0; // at most 7 bits between runs
  private bitCount = 0;
  private stage: Stage = Stage.Header;
  private last = false;
  private storedLeft = 0;
  private lit: Code | null = null;
  private dist: Code | null = null;
  // A dynamic block's codes and code lengths, rebuilt in place block after block.
  private readonly dynamicLit = emptyCode(286);
  private readonly dynamicDist = emptyCode(30);
  private readonly lengthsCode = emptyCode(19);
  private readonly lengths = new Uint8Array(286 + 30);
  private readonly cl = new Uint8Array(19);
  private adlerA = 1;
  private adlerB = 0;
  truncated = false; // Failed because the data ended, not because it is wrong

  // `window` receives the output: at least HISTORY_BYTES + 2 x MAX_MATCH bytes; the larger, the fewer take()s.
  constructor(window: Uint8Array, inputBytes = 8192) {
    if (window.length < HISTORY_BYTES + 2 * MAX_MATCH) throw new RangeError("the inflater's window is too small");
    this.window = window;
    this.input = new Uint8Array(inputBytes);
  }

  // Appends compressed bytes (call run() after each feed: the input holds what is unread plus `data`).
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

  // Compressed bytes fed and not yet read.
  get unread(): number {
    return this.end - this.pos;
  }

  // The output written since the last take(), a view of the window valid until the next run().
  take(): Uint8Array {
    const out = this.window.subarray(this.taken, this.written);
    this.sum();
    this.taken = this.written;
    return out;
  }

  // Inflates from the input in hand until it is used up, the window is full or the stream ends. `final`:
  // no more input will come (a stream cut short is then Failed with `truncated`).
  run(final: boolean): Inflating {
    if (this.taken < this.written) throw new RangeError("take() the output before running again");
    if (this.written > this.window.length - 2 * MAX_MATCH) this.slide();
    for (;;) {
      const stage = this.stage;
      const pos = this.pos;
      const bitBuf = this.bitBuf;
      const bitCount = this.bitCount;
      let result: Inflating | null;
      try {
        result =
          stage === Stage.Codes
            ? this.codes()
            : stage === Stage.Stored
              ? this.stored()
              : stage === Stage.Block
                ? this.block()
                : stage === Stage.Header
                  ? this.header()
                  : stage === Stage.Adler
                    ? this.checkAdler()
                    : stage === Stage.End
                      ? Inflating.End
                      : Inflating.Failed;
      } catch (e) {
        if (e instanceof Invalid) result = Inflating.Failed;
        else if (e instanceof Short) {
          // A header cut by the input's end is read again from its start once more has come.
          this.stage = stage;
          this.pos = pos;
          this.bitBuf = bitBuf;
          this.bitCount = bitCount;
          result = Inflating.NeedInput;
        } else throw e;
      }
      if (result === Inflating.NeedInput && final) {
        this.truncated = true;
        result = Inflating.Failed;
      }
      if (result === Inflating.Failed) this.stage = Stage.Failed;
      if (result !== null) return result;
    }
  }

  // Moves the last HISTORY_BYTES of output to the window's start.
  private slide(): void {
    const from = Math.max(0, this.written - HISTORY_BYTES);
    this.window.copyWithin(0, from, this.written);
    this.total += from;
    this.written -= from;
    this.taken = this.written;
    this.summed = this.written;
  }

  private bits(need: number): number {
    while (this.bitCount < need) {
      if (this.pos >= this.end) throw new Short();
      this.bitBuf |= this.input[this.pos++] << this.bitCount;
      this.bitCount += 8;
    }
    const v = this.bitBuf & ((1 << need) - 1);
    this.bitBuf >>>= need;
    this.bitCount -= need;
    return v;
  }

  private symbol(c: Code): number {
    while (this.bitCount < 15 && this.pos < this.end) {
      this.bitBuf |= this.input[this.pos++] << this.bitCount;
      this.bitCount += 8;
    }
    const e = slowDecode(c, this.bitBuf, this.bitCount);
    if (e === -1) throw new Short();
    if (e === -2) throw new Invalid();
    this.bitBuf >>>= e & 15;
    this.bitCount -= e & 15;
    return e >> 4;
  }

  private header(): null {
    if (this.end - this.pos < 2) throw new Short();
    const cmf = this.input[this.pos];
    const flg = this.input[this.pos + 1];
    if ((cmf & 15) !== 8 || cmf >> 4 > 7 || (cmf * 256 + flg) % 31 !== 0 || flg & 0x20) throw new Invalid();
    this.pos += 2;
    this.stage = Stage.Block;
    return null;
  }

  private block(): Inflating | null {
    if (this.last) {
      this.stage = Stage.Adler;
      return null;
    }
    const last = this.bits(1);
    const type = this.bits(2);
    if (type === 0) {
      this.bitBuf = 0;
      this.bitCount = 0;
      if (this.end - this.pos < 4) throw new Short();
      const i = this.input;
      const p = this.pos;
      const len = i[p] | (i[p + 1] << 8);
      if ((len ^ 0xffff) !== (i[p + 2] | (i[p + 3] << 8))) throw new Invalid();
      this.pos += 4;
      this.storedLeft = len;
      this.stage = Stage.Stored;
    } else if (type === 1) {
      ({ lit: this.lit, dist: this.dist } = fixed());
      this.stage = Stage.Codes;
    } else if (type === 2) {
      this.dynamic();
      this.stage = Stage.Codes;
    } else {
      throw new Invalid();
    }
    this.last = last === 1;
    return null;
  }

  private dynamic(): void {
    const nlen = this.bits(5) + 257;
    const ndist = this.bits(5) + 1;
    const ncode = this.bits(4) + 4;
    if (nlen > 286 || ndist > 30) throw new Invalid();
    const cl = this.cl.fill(0);
    for (let i = 0; i < ncode; i++) cl[CL_ORDER[i]] = this.bits(3);
    const clCode = code(cl, 19, "lengths", this.lengthsCode);
    const lengths = this.lengths.fill(0);
    for (let i = 0; i < nlen + ndist; ) {
      const sym = this.symbol(clCode);
      if (sym < 16) lengths[i++] = sym;
      else {
        let repeat: number;
        let value = 0;
        if (sym === 16) {
          if (i === 0) throw new Invalid();
          value = lengths[i - 1];
          repeat = 3 + this.bits(2);
        } else repeat = sym === 17 ? 3 + this.bits(3) : 11 + this.bits(7);
        if (i + repeat > nlen + ndist) throw new Invalid();
        lengths.fill(value, i, i + repeat);
        i += repeat;
      }
    }
    if (lengths[256] === 0) throw new Invalid();
    this.lit = code(lengths.subarray(0, nlen), nlen, "symbols", this.dynamicLit);
    this.dist = code(lengths.subarray(nlen, nlen + ndist), ndist, "symbols", this.dynamicDist);
  }

  private stored(): Inflating | null {
    const room = this.window.length - MAX_MATCH - this.written;
    const n = Math.min(this.storedLeft, this.end - this.pos, room);
    this.window.set(this.input.subarray(this.pos, this.pos + n), this.written);
    this.written += n;
    this.pos += n;
    this.storedLeft -= n;
    if (this.storedLeft === 0) {
      this.stage = Stage.Block;
      return null;
    }
    return n === room ? Inflating.WindowFull : Inflating.NeedInput;
  }

  // The hot spot: literals and matches of a compressed block, until the block ends, the window fills or
  // the input in hand ends (then back to the last whole symbol).
  private codes(): Inflating | null {
    const input = this.input;
    const end = this.end;
    const out = this.window;
    const full = out.length - MAX_MATCH;
    const lit = this.lit!;
    const dist = this.dist!;
    const litFast = lit.fast;
    const distFast = dist.fast;
    let pos = this.pos;
    let bitBuf = this.bitBuf;
    let bitCount = this.bitCount;
    let n = this.written;
    let result: Inflating | null = Inflating.WindowFull;
    for (;;) {
      if (n >= full) break;
      // The symbol's start, to come back to when the input ends inside it.
      const startPos = pos;
      const startBuf = bitBuf;
      const startCount = bitCount;
      while (bitCount < 24 && pos < end) {
        bitBuf |= input[pos++] << bitCount;
        bitCount += 8;
      }
      let e = litFast[bitBuf & FAST_MASK];
      if (e === 0 || (e & 15) > bitCount) e = slowDecode(lit, bitBuf, bitCount);
      if (e < 0) {
        if (e === -2) {
          result = Inflating.Failed;
          break;
        }
        pos = startPos;
        bitBuf = startBuf;
        bitCount = startCount;
        result = Inflating.NeedInput;
        break;
      }
      bitBuf >>>= e & 15;
      bitCount -= e & 15;
      const sym = e >> 4;
      if (sym < 256) {
        out[n++] = sym;
        // Photos are mostly literals: more of them straight away while the next code is surely in the
        // buffer (a table entry is at most FAST_BITS long).
        while (bitCount >= FAST_BITS && n < full) {
          const e2 = litFast[bitBuf & FAST_MASK];
          if (e2 === 0 || e2 >> 4 >= 256) break;
          bitBuf >>>= e2 & 15;
          bitCount -= e2 & 15;
          out[n++] = e2 >> 4;
        }
        continue;
      }
      if (sym === 256) {
        this.stage = Stage.Block;
        result = null;
        break;
      }
      const l = sym - 257;
      if (l >= 29) {
        result = Inflating.Failed;
        break;
      }
      // Up to 5 extra bits, a 15-bit distance code and 13 extra bits: refilled before each part.
      let extra = LENGTH_EXTRA[l];
      if (bitCount < extra + 15) {
        while (bitCount < 24 && pos < end) {
          bitBuf |= input[pos++] << bitCount;
          bitCount += 8;
        }
      }
      let d = -1;
      if (bitCount >= extra) {
        const length = LENGTH_BASE[l] + (bitBuf & ((1 << extra) - 1));
        bitBuf >>>= extra;
        bitCount -= extra;
        let de = distFast[bitBuf & FAST_MASK];
        if (de === 0 || (de & 15) > bitCount) de = slowDecode(dist, bitBuf, bitCount);
        if (de === -2) {
          result = Inflating.Failed;
          break;
        }
        if (de >= 0) {
          bitBuf >>>= de & 15;
          bitCount -= de & 15;
          d = de >> 4;
          if (d >= 30) {
            result = Inflating.Failed;
            break;
          }
          extra = DIST_EXTRA[d];
          while (bitCount < extra && pos < end) {
            bitBuf |= input[pos++] << bitCount;
            bitCount += 8;
          }
          if (bitCount >= extra) {
            const distance = DIST_BASE[d] + (bitBuf & ((1 << extra) - 1));
            bitBuf >>>= extra;
            bitCount -= extra;
            if (distance > this.total + n) {
              result = Inflating.Failed;
              break;
            }
            let from = n - distance;
            if (distance >= length) {
              out.copyWithin(n, from, from + length);
              n += length;
            } else {
              for (const stop = n + length; n < stop; ) out[n++] = out[from++];
            }
            continue;
          }
        }
      }
      pos = startPos;
      bitBuf = startBuf;
      bitCount = startCount;
      result = Inflating.NeedInput;
      break;
    }
    // Whole bytes in the bit buffer go back to the input, so that a stored block or a feed finds them there.
    const back = bitCount >> 3;
    pos -= back;
    bitCount &= 7;
    bitBuf &= (1 << bitCount) - 1;
    this.pos = pos;
    this.bitBuf = bitBuf;
    this.bitCount = bitCount;
    this.written = n;
    return result;
  }

  // The Adler-32 after the last block, big-endian.
  private checkAdler(): Inflating {
    this.bitBuf = 0;
    this.bitCount = 0;
    if (this.end - this.pos < 4) throw new Short();
    this.sum();
    const i = this.input;
    const p = this.pos;
    const stored = ((i[p] << 24) | (i[p + 1] << 16) | (i[p + 2] << 8) | i[p + 3]) >>> 0;
    this.pos += 4;
    if (stored !== ((this.adlerB << 16) | this.adlerA) >>> 0) throw new Invalid();
    this.stage = Stage.End;
    return Inflating.End;
  }

  // Adler-32 over the output not summed yet, 5552 bytes at a time (the most before a sum can pass 2^32, as
  // zlib's NMAX).
  private sum(): void {
    const data = this.window.subarray(this.summed, this.written);
    this.summed = this.written;
    let a = this.adlerA;
    let b = this.adlerB;
    for (let at = 0; at < data.length; ) {
      const stop = Math.min(data.length, at + 5552);
      for (; at < stop; at++) {
        a += data[at];
        b += a;
      }
      a %= 65521;
      b %= 65521;
    }
    this.adlerA = a;
    this.adlerB = b;
  }
}

// For PNG's text chunks: the output up to where the data ends (a truncated stream is no error), as Python's
// zlib.decompressobj().decompress(data, limit) answers for Pillow's _safe_zlib_decompress: "error" for what
// zlib.error reports, "over" when the output would pass the limit.
export function inflateZlib(data: Uint8Array, limit: number): Inflated {
  const inflater = new Inflater(new Uint8Array(HISTORY_BYTES * 2), 0);
  inflater.feed(data);
  let out = new Uint8Array(Math.min(limit, Math.max(1024, data.length * 4)));
  let n = 0;
  for (;;) {
    const state = inflater.run(true);
    const piece = inflater.take();
    if (n + piece.length > limit) return "over";
    if (n + piece.length > out.length) {
      const grown = new Uint8Array(Math.min(limit, Math.max(2 * out.length, n + piece.length)));
      grown.set(out.subarray(0, n));
      out = grown;
    }
    out.set(piece, n);
    n += piece.length;
    if (state === Inflating.End) return out.subarray(0, n);
    if (state === Inflating.Failed) return inflater.truncated ? out.subarray(0, n) : "error";
  }
}
