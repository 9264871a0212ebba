// A resumable zlib inflater (RFC 1950/1951) for PNG's IDAT stream: core/image/png/inflate.ts Inflater is
// its JavaScript twin and the specification. The same stages, the same refusals at the same points (a bad
// header, block type, code or distance, a wrong Adler-32), the same bytes left unread, so that the host can
// run either; what differs is speed: a 64-bit bit buffer refilled eight bytes at a time, one table lookup
// per code of up to ROOT_BITS bits, matches copied sixteen bytes at a time, Adler-32 with SIMD.
//
// Nothing of a stream stays here between calls (requests share the instance): the host copies the
// stream's state block, the last 32 KiB of its output (the window matches reach into) and its unread input
// into scratch, runs, and copies the state and the new output back. The Huffman tables are rebuilt from the
// code lengths kept in the state block when a call continues a block whose tables another call replaced.
//
// state: 384 bytes (core/image/png/inflate-kernel.ts STATE_BYTES), i32 words (the S_ offsets) then the
// current block's code lengths (bytes).
// window: [0, hist) the output before this call (at most 32 KiB), output written from hist on, a code
// started only before hist + room (a match may run MAX_MATCH bytes past it); 16 bytes of slack after.
// input: [0, inLength) unread compressed bytes.

@lazy const MAX_MATCH: i32 = 258;

// The state block's words; stages and results as the JavaScript twin's Stage and Inflating.
@lazy const S_STAGE: usize = 0;
@lazy const S_LAST: usize = 1; // the current block is the last
@lazy const S_STORED_LEFT: usize = 2;
@lazy const S_HOLD: usize = 3; // at most 7 bits between calls
@lazy const S_BITS: usize = 4;
@lazy const S_ADLER_A: usize = 5;
@lazy const S_ADLER_B: usize = 6;
@lazy const S_HAVE: usize = 7; // output so far, saturating at 1 << 30: how far back a distance may reach
@lazy const S_KIND: usize = 8; // the current compressed block's codes: 1 fixed, 2 dynamic
@lazy const S_NLEN: usize = 9; // a dynamic block's literal/length and distance code counts
@lazy const S_NDIST: usize = 10;
@lazy const S_TRUNCATED: usize = 11; // Failed because the input ended (final)
@lazy const S_READ: usize = 12; // out: input bytes used by the call
@lazy const S_WRITTEN: usize = 13; // out: output bytes written by the call
@lazy const S_STREAM: usize = 14; // the host's number for the stream (not 0)
@lazy const S_BLOCKS: usize = 15; // blocks begun: with S_STREAM, names the tables of the current block
@lazy const S_LENGTHS: usize = 64; // byte offset of the 286 + 30 code lengths

@lazy const HEADER: i32 = 0;
@lazy const BLOCK: i32 = 1;
@lazy const STORED: i32 = 2;
@lazy const CODES: i32 = 3;
@lazy const ADLER: i32 = 4;
@lazy const END: i32 = 5;
@lazy const FAILED_STAGE: i32 = 6;

@lazy const NEED_INPUT: i32 = 0;
@lazy const WINDOW_FULL: i32 = 1;
@lazy const ENDED: i32 = 2;
@lazy const FAILED: i32 = 3;
@lazy const GO_ON: i32 = -1; // a stage ended: on to the next in the same call

// Codes of up to ROOT_BITS bits are one lookup; longer ones are read bit by bit (slowDecode), as the twin.
@lazy const ROOT_BITS: i32 = 10;
@lazy const ROOT_MASK: u64 = (1 << ROOT_BITS) - 1;

// A table entry, u32: value << 16 | kind << 8 | extra bits << 4 | code length; 0 for no entry (a longer
// code or an unused one). Literal: value the byte; length and distance codes: value the base.
@lazy const LITERAL: u32 = 0;
@lazy const END_OF_BLOCK: u32 = 1;
@lazy const COPY: u32 = 2;
@lazy const BAD_SYMBOL: u32 = 3; // length symbols 286 and 287, distance symbols 30 and 31 (fixed codes)

// Length and distance codes: base values and extra bits (RFC 1951, 3.2.5).
@lazy const LENGTH_BASE: usize = memory.data<u16>([
  3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
]);
@lazy const LENGTH_EXTRA: usize = memory.data<u8>([
  0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
]);
@lazy const DIST_BASE: usize = memory.data<u16>([
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
  8193, 12289, 16385, 24577,
]);
@lazy const DIST_EXTRA: usize = memory.data<u8>([
  0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
]);
@lazy const CL_ORDER: usize = memory.data<u8>([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]);

// The codes of the current block (not a stream's state: rebuilt when a call continues a block whose tables
// are not the last built, builtStream and builtBlock): per code a root table
// (1 << ROOT_BITS u32), the counts per length (16 i32) and the symbols in code order (u16).
@lazy const LIT_TABLE: usize = memory.data(4 << ROOT_BITS, 16);
@lazy const DIST_TABLE: usize = memory.data(4 << ROOT_BITS, 16);
@lazy const LIT_COUNTS: usize = memory.data(64, 16);
@lazy const DIST_COUNTS: usize = memory.data(64, 16);
@lazy const CL_COUNTS: usize = memory.data(64, 16);
@lazy const LIT_SYMBOLS: usize = memory.data(2 * 288, 16);
@lazy const DIST_SYMBOLS: usize = memory.data(2 * 32, 16);
@lazy const CL_SYMBOLS: usize = memory.data(2 * 19, 16);
@lazy const OFFSETS: usize = memory.data(64, 16);
@lazy const CL_LENGTHS: usize = memory.data(19, 16);
@lazy const FIXED_LENGTHS: usize = memory.data(288 + 32, 16);

// The call's reader and writer, in globals for its length.
let input: usize = 0;
let inEnd: usize = 0;
let inPos: usize = 0;
let hold: u64 = 0;
let bits: i32 = 0;
let outStart: usize = 0;
let outPos: usize = 0;
let outFull: usize = 0;
let have: i32 = 0; // output before outStart that a distance may reach
let summed: usize = 0; // the state's Adler-32 covers the output before this
let builtStream: i32 = 0;
let builtBlock: i32 = 0;
// A block header cut by the input's end is read again from its start once more has come.
let restartPos: usize = 0;
let restartHold: u64 = 0;
let restartBits: i32 = 0;

// zlib's inflate_table checks (the twin's code()): an over-subscribed code is refused, and so is an
// incomplete one, except (`check` SYMBOLS) a code whose longest length is 1; FIXED codes are not checked.
@lazy const CHECK_LENGTHS: i32 = 0;
@lazy const CHECK_SYMBOLS: i32 = 1;
@lazy const CHECK_FIXED: i32 = 2;

// Builds a canonical code from n lengths; the root table too when `table` is not 0 (`dist`: distance
// entries, else literal/length ones). Returns false for a code the checks refuse.
function build(lengths: usize, n: i32, check: i32, counts: usize, symbols: usize, table: usize, dist: bool): bool {
  memory.fill(counts, 0, 64);
  for (let i = 0; i < n; i++) {
    const at = counts + (<usize>load<u8>(lengths + <usize>i) << 2);
    store<i32>(at, load<i32>(at) + 1);
  }
  store<i32>(counts, 0);
  let max = 0;
  let left = 1;
  for (let len = 1; len < 16; len++) {
    const count = load<i32>(counts + (<usize>len << 2));
    left = (left << 1) - count;
    if (left < 0) return false;
    if (count != 0) max = len;
  }
  if (check != CHECK_FIXED && left > 0 && max > 0 && (check == CHECK_LENGTHS || max != 1)) return false;
  memory.fill(OFFSETS, 0, 64);
  for (let len = 1; len < 15; len++) {
    store<i32>(
      OFFSETS + (<usize>(len + 1) << 2),
      load<i32>(OFFSETS + (<usize>len << 2)) + load<i32>(counts + (<usize>len << 2)),
    );
  }
  for (let i = 0; i < n; i++) {
    const len = <usize>load<u8>(lengths + <usize>i);
    if (len == 0) continue;
    const at = OFFSETS + (len << 2);
    const k = load<i32>(at);
    store<u16>(symbols + (<usize>k << 1), <u16>i);
    store<i32>(at, k + 1);
  }
  if (table == 0) return true;
  // Codes are assigned in order of length then symbol and read from the stream's low bit up: a code of
  // `len` bits fills every entry whose low `len` bits are its bits reversed.
  memory.fill(table, 0, 4 << ROOT_BITS);
  // `reversed` steps through the codes in order, bit-reversed: zlib's increment from the top bit down.
  let reversed = 0;
  let index = 0;
  for (let len = 1; len <= ROOT_BITS; len++) {
    const count = load<i32>(counts + (<usize>len << 2));
    for (let k = 0; k < count; k++) {
      const entry = entryOf(<i32>load<u16>(symbols + (<usize>index << 1)), len, dist);
      index++;
      for (let at = reversed; at < 1 << ROOT_BITS; at += 1 << len) store<u32>(table + (<usize>at << 2), entry);
      let incr = 1 << (len - 1);
      while ((reversed & incr) != 0) incr >>= 1;
      reversed = incr != 0 ? (reversed & (incr - 1)) + incr : 0;
    }
  }
  return true;
}

@inline function entryOf(sym: i32, len: i32, dist: bool): u32 {
  if (dist) {
    if (sym >= 30) return (BAD_SYMBOL << 8) | <u32>len;
    return (<u32>load<u16>(DIST_BASE + (<usize>sym << 1)) << 16) | (COPY << 8) |
      (<u32>load<u8>(DIST_EXTRA + <usize>sym) << 4) | <u32>len;
  }
  if (sym < 256) return (<u32>sym << 16) | <u32>len;
  if (sym == 256) return (END_OF_BLOCK << 8) | <u32>len;
  const l = sym - 257;
  if (l >= 29) return (BAD_SYMBOL << 8) | <u32>len;
  return (<u32>load<u16>(LENGTH_BASE + (<usize>l << 1)) << 16) | (COPY << 8) |
    (<u32>load<u8>(LENGTH_EXTRA + <usize>l) << 4) | <u32>len;
}

// A code bit by bit (the twin's slowDecode): symbol << 4 | length, -1 when the bits in hand end first, -2
// when no code matches.
function slowDecode(counts: usize, symbols: usize, hold: u64, bits: i32): i32 {
  let value = 0;
  let first = 0;
  let index = 0;
  for (let len = 1; len < 16; len++) {
    if (len > bits) return -1;
    value |= <i32>(hold >> <u64>(len - 1)) & 1;
    const count = load<i32>(counts + (<usize>len << 2));
    if (value - first < count) return (<i32>load<u16>(symbols + (<usize>(index + value - first) << 1)) << 4) | len;
    index += count;
    first = (first + count) << 1;
    value <<= 1;
  }
  return -2;
}

// The entry of the next code (not consumed): 0 when the bits in hand end first, 0xffffffff when no code
// matches.
@inline function decode(table: usize, counts: usize, symbols: usize, dist: bool): u32 {
  let e = load<u32>(table + (<usize>(hold & ROOT_MASK) << 2));
  if (e == 0 || <i32>(e & 15) > bits) {
    const s = slowDecode(counts, symbols, hold, bits);
    if (s == -1) return 0;
    if (s == -2) return 0xffffffff;
    e = entryOf(s >> 4, s & 15, dist);
  }
  return e;
}

// Whole bytes into the bit buffer while it has room for them and input is in hand.
@inline function refillBytes(): void {
  while (bits <= 55 && inPos < inEnd) {
    hold |= <u64>load<u8>(inPos++) << <u64>bits;
    bits += 8;
  }
}

// `need` bits for a block header, or -1 when the input in hand ends first.
function take(need: i32): i32 {
  refillBytes();
  if (bits < need) return -1;
  const v = <i32>(hold & ((1 << <u64>need) - 1));
  hold >>= <u64>need;
  bits -= need;
  return v;
}

// Input consumed to a byte boundary: the bits in hand dropped (a stored block's header, the Adler-32).
@inline function alignToByte(): void {
  inPos -= <usize>(bits >> 3);
  hold = 0;
  bits = 0;
}

// The twin's header().
function header(state: usize): i32 {
  if (inEnd - inPos < 2) return NEED_INPUT;
  const cmf = <i32>load<u8>(inPos);
  const flg = <i32>load<u8>(inPos, 1);
  if ((cmf & 15) != 8 || cmf >> 4 > 7 || (cmf * 256 + flg) % 31 != 0 || (flg & 0x20) != 0) return FAILED;
  inPos += 2;
  store<i32>(state + (S_STAGE << 2), BLOCK);
  return GO_ON;
}

// The twin's block() and dynamic(): a block's header, or NEED_INPUT (read again from its start once more
// has come) or FAILED.
function block(state: usize): i32 {
  if (load<i32>(state + (S_LAST << 2)) != 0) {
    store<i32>(state + (S_STAGE << 2), ADLER);
    return GO_ON;
  }
  const last = take(1);
  if (last < 0) return NEED_INPUT;
  const type = take(2);
  if (type < 0) return NEED_INPUT;
  store<i32>(state + (S_BLOCKS << 2), load<i32>(state + (S_BLOCKS << 2)) + 1);
  if (type == 0) {
    alignToByte();
    if (inEnd - inPos < 4) return NEED_INPUT;
    const len = <i32>load<u16>(inPos);
    if ((len ^ 0xffff) != <i32>load<u16>(inPos, 2)) return FAILED;
    inPos += 4;
    store<i32>(state + (S_STORED_LEFT << 2), len);
    store<i32>(state + (S_STAGE << 2), STORED);
  } else if (type == 1) {
    codesOf(state, 1);
    store<i32>(state + (S_KIND << 2), 1);
    store<i32>(state + (S_STAGE << 2), CODES);
  } else if (type == 2) {
    const r = dynamic(state);
    if (r != GO_ON) return r;
    store<i32>(state + (S_KIND << 2), 2);
    store<i32>(state + (S_STAGE << 2), CODES);
  } else {
    return FAILED;
  }
  store<i32>(state + (S_LAST << 2), last);
  return GO_ON;
}

function dynamic(state: usize): i32 {
  const h0 = take(5);
  if (h0 < 0) return NEED_INPUT;
  const h1 = take(5);
  if (h1 < 0) return NEED_INPUT;
  const h2 = take(4);
  if (h2 < 0) return NEED_INPUT;
  const nlen = h0 + 257;
  const ndist = h1 + 1;
  const ncode = h2 + 4;
  if (nlen > 286 || ndist > 30) return FAILED;
  memory.fill(CL_LENGTHS, 0, 19);
  for (let i = 0; i < ncode; i++) {
    const v = take(3);
    if (v < 0) return NEED_INPUT;
    store<u8>(CL_LENGTHS + <usize>load<u8>(CL_ORDER + <usize>i), <u8>v);
  }
  if (!build(CL_LENGTHS, 19, CHECK_LENGTHS, CL_COUNTS, CL_SYMBOLS, 0, false)) return FAILED;
  const lengths = state + S_LENGTHS;
  memory.fill(lengths, 0, 286 + 30);
  const total = nlen + ndist;
  for (let i = 0; i < total; ) {
    refillBytes();
    const s = slowDecode(CL_COUNTS, CL_SYMBOLS, hold, bits);
    if (s == -1) return NEED_INPUT;
    if (s == -2) return FAILED;
    hold >>= <u64>(s & 15);
    bits -= s & 15;
    const sym = s >> 4;
    if (sym < 16) {
      store<u8>(lengths + <usize>i, <u8>sym);
      i++;
      continue;
    }
    let repeat: i32;
    let value = 0;
    if (sym == 16) {
      if (i == 0) return FAILED;
      value = <i32>load<u8>(lengths + <usize>(i - 1));
      const r = take(2);
      if (r < 0) return NEED_INPUT;
      repeat = 3 + r;
    } else if (sym == 17) {
      const r = take(3);
      if (r < 0) return NEED_INPUT;
      repeat = 3 + r;
    } else {
      const r = take(7);
      if (r < 0) return NEED_INPUT;
      repeat = 11 + r;
    }
    if (i + repeat > total) return FAILED;
    memory.fill(lengths + <usize>i, <u8>value, <usize>repeat);
    i += repeat;
  }
  if (load<u8>(lengths + 256) == 0) return FAILED;
  // Kept (in lengths) for the calls that continue this block.
  store<i32>(state + (S_NLEN << 2), nlen);
  store<i32>(state + (S_NDIST << 2), ndist);
  return codesOf(state, 2) ? GO_ON : FAILED;
}

// The current block's tables from its kind (1 fixed, 2 dynamic with the lengths in the state block).
function codesOf(state: usize, kind: i32): bool {
  builtStream = 0;
  if (kind == 1) {
    const l = FIXED_LENGTHS;
    memory.fill(l, 8, 144);
    memory.fill(l + 144, 9, 112);
    memory.fill(l + 256, 7, 24);
    memory.fill(l + 280, 8, 8);
    memory.fill(l + 288, 5, 30);
    build(l, 288, CHECK_FIXED, LIT_COUNTS, LIT_SYMBOLS, LIT_TABLE, false);
    build(l + 288, 30, CHECK_FIXED, DIST_COUNTS, DIST_SYMBOLS, DIST_TABLE, true);
  } else {
    const nlen = load<i32>(state + (S_NLEN << 2));
    const ndist = load<i32>(state + (S_NDIST << 2));
    const lengths = state + S_LENGTHS;
    if (
      !build(lengths, nlen, CHECK_SYMBOLS, LIT_COUNTS, LIT_SYMBOLS, LIT_TABLE, false) ||
      !build(lengths + <usize>nlen, ndist, CHECK_SYMBOLS, DIST_COUNTS, DIST_SYMBOLS, DIST_TABLE, true)
    ) {
      return false;
    }
  }
  builtStream = load<i32>(state + (S_STREAM << 2));
  builtBlock = load<i32>(state + (S_BLOCKS << 2));
  return true;
}

// The twin's stored().
function stored(state: usize): i32 {
  const left = load<i32>(state + (S_STORED_LEFT << 2));
  const room = <i32>(outFull - outPos);
  let n = <i32>(inEnd - inPos);
  if (left < n) n = left;
  if (room < n) n = room;
  memory.copy(outPos, inPos, <usize>n);
  outPos += <usize>n;
  inPos += <usize>n;
  store<i32>(state + (S_STORED_LEFT << 2), left - n);
  if (left == n) {
    store<i32>(state + (S_STAGE << 2), BLOCK);
    return GO_ON;
  }
  return n == room ? WINDOW_FULL : NEED_INPUT;
}

// `length` bytes from `distance` back to `to`, returning the end; the output has MAX_MATCH + 16 bytes of
// room.
@inline function copyMatch(to: usize, distance: i32, length: i32): usize {
  let from = to - <usize>distance;
  const stop = to + <usize>length;
  if (distance >= 16) {
    // Sixteen at a time: each load is of bytes already written (the last store may pass `stop`).
    do {
      v128.store(to, v128.load(from));
      to += 16;
      from += 16;
    } while (to < stop);
  } else if (distance >= 8) {
    do {
      store<u64>(to, load<u64>(from));
      to += 8;
      from += 8;
    } while (to < stop);
  } else if (distance == 1) {
    memory.fill(to, load<u8>(from), <usize>length);
  } else {
    for (; to < stop; to++, from++) store<u8>(to, load<u8>(from));
  }
  return stop;
}

// The fast part of codes(), in locals, while at least 8 input bytes are ahead: one eight-byte refill per
// code then holds all of a match's bits (15 + 5 + 15 + 13 = 48 <= 56), so the input cannot end inside a
// code. Returns GO_ON at the block's end, FAILED, or CAREFUL where the careful loop takes over.
@lazy const CAREFUL: i32 = -2;

function codesFast(state: usize): i32 {
  const fastEnd = inEnd - 8; // below inPos when fewer than 8 bytes are in hand
  const full = outFull;
  const reach = <usize>have;
  let ip = inPos;
  let op = outPos;
  let h = hold;
  let b = bits;
  let result = CAREFUL;
  while (ip <= fastEnd && op < full) {
    // The bits above `b` are the input's next bits, so or-ing them in again changes nothing.
    h |= load<u64>(ip) << <u64>b;
    ip += <usize>((63 - b) >> 3);
    b |= 56;
    let e = load<u32>(LIT_TABLE + (<usize>(h & ROOT_MASK) << 2));
    if (e == 0) {
      const s = slowDecode(LIT_COUNTS, LIT_SYMBOLS, h, b);
      if (s < 0) {
        result = FAILED;
        break;
      }
      e = entryOf(s >> 4, s & 15, false);
    }
    let len = <i32>(e & 15);
    h >>= <u64>len;
    b -= len;
    if ((e & 0xf00) == 0) {
      store<u8>(op++, <u8>(e >> 16));
      // Photos are mostly literals: up to four more straight from the table (b >= 41 = 56 - 15 bits left,
      // at most ROOT_BITS each).
      for (let k = 0; k < 4; k++) {
        e = load<u32>(LIT_TABLE + (<usize>(h & ROOT_MASK) << 2));
        if (e == 0 || (e & 0xf00) != 0) break;
        len = <i32>(e & 15);
        h >>= <u64>len;
        b -= len;
        store<u8>(op++, <u8>(e >> 16));
      }
      continue;
    }
    const kind = (e >> 8) & 3;
    if (kind == END_OF_BLOCK) {
      store<i32>(state + (S_STAGE << 2), BLOCK);
      result = GO_ON;
      break;
    }
    if (kind == BAD_SYMBOL) {
      result = FAILED;
      break;
    }
    // A length, then its distance.
    let extra = <i32>((e >> 4) & 15);
    const length = <i32>(e >> 16) + (<i32>h & ((1 << extra) - 1));
    h >>= <u64>extra;
    b -= extra;
    e = load<u32>(DIST_TABLE + (<usize>(h & ROOT_MASK) << 2));
    if (e == 0) {
      const s = slowDecode(DIST_COUNTS, DIST_SYMBOLS, h, b);
      if (s < 0) {
        result = FAILED;
        break;
      }
      e = entryOf(s >> 4, s & 15, true);
    }
    len = <i32>(e & 15);
    h >>= <u64>len;
    b -= len;
    if (((e >> 8) & 3) == BAD_SYMBOL) {
      result = FAILED;
      break;
    }
    extra = <i32>((e >> 4) & 15);
    const distance = <i32>(e >> 16) + (<i32>h & ((1 << extra) - 1));
    h >>= <u64>extra;
    b -= extra;
    if (<usize>distance > reach + (op - outStart)) {
      result = FAILED;
      break;
    }
    op = copyMatch(op, distance, length);
  }
  inPos = ip;
  outPos = op;
  hold = h;
  bits = b;
  return result;
}

// The hot spot: literals and matches of a compressed block until it ends, the window fills or the input
// in hand ends (then back to the last whole code): codesFast, then a code at a time near the input's end.
function codes(state: usize): i32 {
  const fast = codesFast(state);
  if (fast != CAREFUL) return fast;
  let startPos: usize = 0;
  let startHold: u64 = 0;
  let startBits: i32 = 0;
  for (;;) {
    if (outPos >= outFull) return WINDOW_FULL;
    startPos = inPos;
    startHold = hold;
    startBits = bits;
    refillBytes();
    let e = decode(LIT_TABLE, LIT_COUNTS, LIT_SYMBOLS, false);
    if (e == 0) return backTo(startPos, startHold, startBits);
    if (e == 0xffffffff) return FAILED;
    let len = <i32>(e & 15);
    hold >>= <u64>len;
    bits -= len;
    let kind = (e >> 8) & 3;
    if (kind == LITERAL) {
      store<u8>(outPos++, <u8>(e >> 16));
      // Photos are mostly literals: two more straight from the table while their bits are surely in hand.
      if (bits >= 2 * ROOT_BITS) {
        e = load<u32>(LIT_TABLE + (<usize>(hold & ROOT_MASK) << 2));
        if (e != 0 && (e & 0xf00) == 0) {
          len = <i32>(e & 15);
          hold >>= <u64>len;
          bits -= len;
          store<u8>(outPos++, <u8>(e >> 16));
          e = load<u32>(LIT_TABLE + (<usize>(hold & ROOT_MASK) << 2));
          if (e != 0 && (e & 0xf00) == 0) {
            len = <i32>(e & 15);
            hold >>= <u64>len;
            bits -= len;
            store<u8>(outPos++, <u8>(e >> 16));
          }
        }
      }
      continue;
    }
    if (kind == END_OF_BLOCK) {
      store<i32>(state + (S_STAGE << 2), BLOCK);
      return GO_ON;
    }
    if (kind == BAD_SYMBOL) return FAILED;
    // A length, then its distance.
    let extra = <i32>((e >> 4) & 15);
    if (bits < extra) return backTo(startPos, startHold, startBits);
    const length = <i32>(e >> 16) + (<i32>hold & ((1 << extra) - 1));
    hold >>= <u64>extra;
    bits -= extra;
    e = decode(DIST_TABLE, DIST_COUNTS, DIST_SYMBOLS, true);
    if (e == 0xffffffff) return FAILED;
    if (e == 0) return backTo(startPos, startHold, startBits);
    len = <i32>(e & 15);
    hold >>= <u64>len;
    bits -= len;
    if (((e >> 8) & 3) == BAD_SYMBOL) return FAILED;
    extra = <i32>((e >> 4) & 15);
    if (bits < extra) return backTo(startPos, startHold, startBits);
    const distance = <i32>(e >> 16) + (<i32>hold & ((1 << extra) - 1));
    hold >>= <u64>extra;
    bits -= extra;
    if (distance > have + <i32>(outPos - outStart)) return FAILED;
    outPos = copyMatch(outPos, distance, length);
    continue;
  }
}

// The input in hand ended inside a code: back to its start.
@inline function backTo(pos: usize, h: u64, b: i32): i32 {
  inPos = pos;
  hold = h;
  bits = b;
  return NEED_INPUT;
}

// The Adler-32 after the last block (the twin's checkAdler), big-endian.
function checkAdler(state: usize): i32 {
  alignToByte();
  if (inEnd - inPos < 4) return NEED_INPUT;
  sumOutput(state);
  const stored = bswap<u32>(load<u32>(inPos));
  inPos += 4;
  const a = <u32>load<i32>(state + (S_ADLER_A << 2));
  const b = <u32>load<i32>(state + (S_ADLER_B << 2));
  if (stored != ((b << 16) | a)) return FAILED;
  store<i32>(state + (S_STAGE << 2), END);
  return ENDED;
}

@inline function hsum(v: v128): u64 {
  return <u64><u32>i32x4.extract_lane(v, 0) + <u64><u32>i32x4.extract_lane(v, 1) +
    <u64><u32>i32x4.extract_lane(v, 2) + <u64><u32>i32x4.extract_lane(v, 3);
}

// The output not summed yet into the state's Adler-32.
function sumOutput(state: usize): void {
  const a = <u32>load<i32>(state + (S_ADLER_A << 2));
  const b = <u32>load<i32>(state + (S_ADLER_B << 2));
  const sum = adler32(summed, <i32>(outPos - summed), (b << 16) | a);
  summed = outPos;
  store<i32>(state + (S_ADLER_A << 2), <i32>(sum & 0xffff));
  store<i32>(state + (S_ADLER_B << 2), <i32>(sum >> 16));
}

// Adler-32 of `n` bytes from `p` onto (a, b) packed as b << 16 | a. 4096-byte runs with 32-bit lanes:
// per 16 bytes x0..x15, b += 16 a + sum (16 - i) x_i and a += sum x_i; the sums stay far below 2^32 in a
// run, and are reduced mod 65521 after each.
export function adler32(p: usize, n: i32, adler: u32): u32 {
  let a = <u64>(adler & 0xffff);
  let b = <u64>(adler >> 16);
  const weightsHigh = i16x8(16, 15, 14, 13, 12, 11, 10, 9);
  const weightsLow = i16x8(8, 7, 6, 5, 4, 3, 2, 1);
  while (n >= 16) {
    const blocks = n >= 4096 ? 256 : n >> 4;
    let sumA = i32x4.splat(0); // per lane: the bytes' sum
    let sumPrev = i32x4.splat(0); // per lane: sumA before each block, summed
    let sumWeighted = i32x4.splat(0);
    for (let k = 0; k < blocks; k++, p += 16) {
      const x = v128.load(p);
      const lo = i16x8.extend_low_i8x16_u(x);
      const hi = i16x8.extend_high_i8x16_u(x);
      sumPrev = i32x4.add(sumPrev, sumA);
      sumA = i32x4.add(sumA, i32x4.extadd_pairwise_i16x8_u(i16x8.add(lo, hi)));
      sumWeighted = i32x4.add(sumWeighted, i32x4.add(i32x4.dot_i16x8_s(lo, weightsHigh), i32x4.dot_i16x8_s(hi, weightsLow)));
    }
    b += <u64>(16 * blocks) * a + 16 * hsum(sumPrev) + hsum(sumWeighted);
    a += hsum(sumA);
    a %= 65521;
    b %= 65521;
    n -= blocks << 4;
  }
  for (let i = 0; i < n; i++) {
    a += <u64>load<u8>(p + <usize>i);
    b += a;
  }
  a %= 65521;
  b %= 65521;
  return (<u32>b << 16) | <u32>a;
}

/**
 * Inflates from input[0, inLength) into window[hist, ...) as the twin's run(final) does (see the file's
 * comment for the layout). Returns NeedInput 0, WindowFull 1, End 2 or Failed 3; the state block holds the
 * bytes read (S_READ) and written (S_WRITTEN) and the stream's state for the next call.
 */
export function inflate(state: usize, inputAt: usize, inLength: i32, window: usize, hist: i32, room: i32, final: i32): i32 {
  input = inputAt;
  inPos = inputAt;
  inEnd = inputAt + <usize>inLength;
  hold = <u64><u32>load<i32>(state + (S_HOLD << 2));
  bits = load<i32>(state + (S_BITS << 2));
  outStart = window + <usize>hist;
  outPos = outStart;
  outFull = outStart + <usize>room;
  summed = outStart;
  have = load<i32>(state + (S_HAVE << 2));
  if (
    load<i32>(state + (S_STAGE << 2)) == CODES &&
    (builtStream != load<i32>(state + (S_STREAM << 2)) || builtBlock != load<i32>(state + (S_BLOCKS << 2)))
  ) {
    // (The lengths were checked when the block began.)
    codesOf(state, load<i32>(state + (S_KIND << 2)));
  }
  let result = GO_ON;
  while (result == GO_ON) {
    const stage = load<i32>(state + (S_STAGE << 2));
    restartPos = inPos;
    restartHold = hold;
    restartBits = bits;
    if (stage == CODES) result = codes(state);
    else if (stage == STORED) result = stored(state);
    else if (stage == BLOCK) result = block(state);
    else if (stage == HEADER) result = header(state);
    else if (stage == ADLER) result = checkAdler(state);
    else if (stage == END) result = ENDED;
    else result = FAILED;
    if (result == NEED_INPUT && stage != CODES && stage != STORED) {
      inPos = restartPos;
      hold = restartHold;
      bits = restartBits;
    }
  }
  // Whole bytes in the bit buffer go back to the input.
  inPos -= <usize>(bits >> 3);
  bits &= 7;
  hold &= (<u64>1 << <u64>bits) - 1;
  if (result == NEED_INPUT && final != 0) {
    store<i32>(state + (S_TRUNCATED << 2), 1);
    result = FAILED;
  }
  if (result == FAILED) store<i32>(state + (S_STAGE << 2), FAILED_STAGE);
  sumOutput(state);
  const written = <i32>(outPos - outStart);
  store<i32>(state + (S_HOLD << 2), <i32>hold);
  store<i32>(state + (S_BITS << 2), bits);
  store<i32>(state + (S_READ << 2), <i32>(inPos - input));
  store<i32>(state + (S_WRITTEN << 2), written);
  const total = have + written;
  store<i32>(state + (S_HAVE << 2), total > 1 << 30 ? 1 << 30 : total);
  return result;
}
