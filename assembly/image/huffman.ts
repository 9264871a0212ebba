// Sequential Huffman decoding of interleaved MCUs into a coefficient band: the same bit reader and block
// decoding as core/image/jpeg/huffman.ts (BitReader.fill, decode, receiveExtend, decodeBlock), the buffer
// topped up at the same points so that running out of bytes, a marker inside the entropy data (zeros
// follow, counted in `pad`) and an unmatched code (17 bits dropped, symbol 0) go exactly as they do there.
// That JavaScript is the scalar twin: tests decode every fixture both ways.
//
// The host copies the tables into the slots below, the entropy bytes into scratch, and the reader's state
// into STATE; a call decodes up to `mcus` MCUs and leaves the state there for the host to read back.

// One Huffman table slot (core/image/jpeg/huffman.ts HuffmanTable): fastAc (2048 i32; an AC table's with
// its codes of no value added, core/image/kernels.ts kernelFastAc), lookup (512 u16), maxCode (18 i32),
// valOffset (18 i32), symbols (256 u8). Slots 0..3 are the scan's components' DC tables, 4..7 their AC
// tables.
@lazy const FAST: usize = 0;
@lazy const LOOKUP: usize = 8192;
@lazy const MAX_CODE: usize = 9216;
@lazy const VAL_OFFSET: usize = 9288;
@lazy const SYMBOLS: usize = 9360;
@lazy const SLOT_BYTES: usize = 9616;
@lazy const TABLES: usize = memory.data(8 * 9616, 16);
// The components' quantization tables, 4 x 64 i32 in natural order.
@lazy const QUANT: usize = memory.data(4 * 256, 16);
// i32 words: see the S_ offsets.
@lazy const STATE: usize = memory.data(36 * 4, 16);

@lazy const S_POS: usize = 0; // next byte in data; at a marker, its code byte
@lazy const S_ACC: usize = 1; // the low S_BITS bits are unread
@lazy const S_BITS: usize = 2;
@lazy const S_PAD: usize = 3; // zero bits made up after a marker
@lazy const S_AT_MARKER: usize = 4;
@lazy const S_PREDS: usize = 5; // 4 DC predictors
@lazy const S_COMPONENTS: usize = 9;
@lazy const S_MX: usize = 10; // the next MCU's column
@lazy const S_STATUS: usize = 11;
@lazy const S_COMPONENT: usize = 12; // 4 x (h, v, band offset in bytes from coefs, blocks per band row)
@lazy const S_WORK: usize = 28; // 4 predictors of the MCU being decoded
@lazy const S_DC_ONLY: usize = 32; // 4 flags: the component's AC coefficients are parsed, not stored (a 1x1 IDCT)

// How a call ended (S_STATUS).
@lazy const DONE: i32 = 0; // all `mcus` decoded
@lazy const EXHAUSTED: i32 = 1; // stopped after an MCU that read past the segment's data
@lazy const NEED_MORE: i32 = 2; // the copied bytes ran out before the data did: call again with more
@lazy const TRUNCATED: i32 = 3; // the data itself ran out (core/image/jpeg/errors.ts truncatedJpeg)

// Natural index of zigzag position k, 16 extra entries at 63 for runs that overshoot (../../core/image/jpeg/zigzag.ts).
@lazy const ZIGZAG: usize = memory.data<i32>([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47,
  55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
]);

// The reader, in globals for the length of a call. The bit buffer is 64 bits wide, the unread bits at its
// top (a symbol's bits are a constant shift away, and reading them shifts them out), and runs ahead of the
// JavaScript reader's 32: `ahead` of its `avail` unread bits are plain entropy bytes (no 0xFF) read early,
// which that reader has not read yet. Its own count, avail - ahead, is kept exactly: every point where it
// tops its buffer up is taken here too (most often by moving bits from `ahead` to its count), so that the
// end of the bytes, a marker and the state handed back come out as they do there. A top-up that the
// read-ahead bytes cannot cover, near a 0xFF or the end of the copied bytes, gives them back and reads
// byte by byte as that reader does (fill()).
let data: usize = 0;
let len: i32 = 0;
let final: bool = false;
let pos: i32 = 0; // next byte to read into the buffer
let acc: u64 = 0; // the top `avail` bits are unread, the rest zero
let avail: i32 = 0;
let ahead: i32 = 0; // a multiple of 8
let pad: i32 = 0;
let atMarker: bool = false;
let status: i32 = DONE;

/** Where the host writes the tables, quantization tables and reader state; see the constants above. */
export function huffmanTables(): usize {
  return TABLES;
}

export function huffmanQuant(): usize {
  return QUANT;
}

export function huffmanState(): usize {
  return STATE;
}

// Reads up to 7 plain bytes ahead in one load, as many as fit in the buffer, stopping before a 0xFF; only
// with 8 copied bytes left, so that the end of the bytes is always met in fill().
@inline function readAhead(): void {
  if (atMarker || pos + 8 > len) return;
  const w = load<u64>(data + <usize>pos); // byte i of the data in bits 8i..8i+7
  let m = (64 - avail) >> 3;
  if (m > 7) m = 7;
  // 0x80 in each byte that is 0xFF (no carries: (b & 0x7F) + 1 <= 0x80)
  const ff = ((w & 0x7f7f7f7f7f7f7f7f) + 0x0101010101010101) & w & 0x8080808080808080;
  if (ff != 0) {
    const first = <i32>ctz(ff) >> 3;
    if (first < m) m = first;
  }
  if (m == 0) return;
  const s = <u64>(m << 3);
  acc |= ((bswap<u64>(w) >>> (64 - s)) << (64 - s)) >>> <u64>avail;
  avail += m << 3;
  ahead += m << 3;
  pos += m;
}

// Gives the read-ahead bytes back: the buffer is then the JavaScript reader's.
@inline function giveBack(): void {
  pos -= ahead >> 3;
  avail -= ahead;
  ahead = 0;
  acc = avail == 0 ? 0 : (acc >>> <u64>(64 - avail)) << <u64>(64 - avail);
}

// The JavaScript reader's fill(), byte by byte, with nothing read ahead: tops the buffer up to at least 25
// bits; false (status set) when the bytes ran out first.
function fillBytes(): bool {
  while (avail <= 24) {
    let byte: i32 = 0;
    if (atMarker) {
      pad += 8;
    } else {
      if (pos >= len) {
        status = final ? TRUNCATED : NEED_MORE;
        return false;
      }
      byte = <i32>load<u8>(data + pos);
      if (byte != 0xff) {
        pos++;
      } else {
        let q = pos + 1;
        while (q < len && load<u8>(data + q) == 0xff) q++;
        if (q >= len) {
          status = final ? TRUNCATED : NEED_MORE;
          return false;
        }
        if (load<u8>(data + q) == 0) {
          pos = q + 1;
        } else {
          atMarker = true;
          pos = q;
          pad += 8;
          byte = 0;
        }
      }
    }
    acc |= <u64>byte << <u64>(56 - avail);
    avail += 8;
  }
  return true;
}

// The JavaScript reader's fill() at one of its top-up points (its count below 25): the bytes it reads come
// from those read ahead when they are there; false (status set) when the bytes ran out first.
function fill(): bool {
  const bits = avail - ahead;
  if (bits > 24) return true;
  const more = ((24 - bits) & ~7) + 8; // it reads whole bytes until it has more than 24 bits
  if (ahead < more) readAhead();
  if (ahead >= more) {
    ahead -= more;
    return true;
  }
  giveBack();
  return fillBytes();
}

// The next symbol of table t, or -1 when the bytes ran out.
function decodeSymbol(t: usize): i32 {
  if (avail - ahead < 16 && !fill()) return -1;
  const e = <i32>load<u16>(t + LOOKUP + (<usize>(acc >>> 55) << 1));
  if (e != 0) {
    acc <<= <u64>(e >> 8);
    avail -= e >> 8;
    return e & 0xff;
  }
  return decodeLong(t);
}

// A code longer than the lookup's 9 bits (the reader's count is at least 16), or -1 when the bytes ran out.
function decodeLong(t: usize): i32 {
  for (let l = 10; l <= 16; l++) {
    const code = <i32>(acc >>> <u64>(64 - l));
    if (code <= load<i32>(t + MAX_CODE + (<usize>l << 2))) {
      acc <<= <u64>l;
      avail -= l;
      return <i32>load<u8>(t + SYMBOLS + <usize>((code + load<i32>(t + VAL_OFFSET + (<usize>l << 2))) & 0xff));
    }
  }
  // No code matches: 17 bits dropped, symbol 0.
  if (avail - ahead < 17 && !fill()) return -1;
  acc <<= 17;
  avail -= 17;
  return 0;
}

// The top n bits of a (1 <= n <= 16) as a value, sign-extended (receiveExtend).
@inline function extendBits(a: u64, n: i32): i32 {
  const v = <i32>(a >>> <u64>(64 - n));
  return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
}

// One block into blk (64 i32, natural order, zero on entry), dequantized by q (the DC alone when dcOnly);
// the new DC predictor, or status set on failure. The hot loop of decoding, with the buffer in locals:
// where the JavaScript reader tops up (its count below 16), its count takes the bytes read ahead, and only
// when those run out is the buffer read again.
function decodeBlock(dc: usize, ac: usize, blk: usize, q: usize, pred: i32, dcOnly: bool): i32 {
  let a = acc;
  let n = avail;
  let h = ahead;
  // The DC symbol: the reader tops up below 16 bits (fill() when the bytes read ahead fall short).
  const dcBits = n - h;
  const dcMore = select<i32>(((24 - dcBits) & ~7) + 8, 0, dcBits < 16);
  if (h < dcMore) {
    if (!fill()) return 0;
    a = acc;
    n = avail;
    h = ahead + dcMore;
  }
  h -= dcMore;
  let s: i32;
  const de = <i32>load<u16>(dc + LOOKUP + (<usize>(a >>> 55) << 1));
  if (de != 0) {
    a <<= <u64>(de >> 8);
    n -= de >> 8;
    s = de & 0xff;
  } else {
    avail = n;
    ahead = h;
    s = decodeLong(dc);
    if (s < 0) return 0;
    a = acc;
    n = avail;
    h = ahead;
  }
  let diff = 0;
  if (s != 0) {
    if (n - h < s) {
      acc = a;
      avail = n;
      ahead = h;
      if (!fill()) return 0;
      a = acc;
      n = avail;
      h = ahead;
    }
    diff = extendBits(a, s);
    a <<= <u64>s;
    n -= s;
  }
  const dcv = pred + diff;
  store<i32>(blk, ((dcv << 16) >> 16) * load<i32>(q));
  const fast = ac + FAST;
  const lookup = ac + LOOKUP;
  for (let k = 1; k < 64; k++) {
    // The JavaScript reader tops up below 16 bits, to more than 24: `more` bits, taken from those read
    // ahead (a select, not a branch: it happens every other symbol or so).
    const bits = n - h;
    const more = select<i32>(((24 - bits) & ~7) + 8, 0, bits < 16);
    if (h < more) {
      // Up to 7 more plain bytes in one load (readAhead, inline), else fill() byte by byte.
      let m = 0;
      const p = pos;
      if (!atMarker && p + 8 <= len) {
        const w = load<u64>(data + <usize>p);
        m = (64 - n) >> 3;
        if (m > 7) m = 7;
        const ff = ((w & 0x7f7f7f7f7f7f7f7f) + 0x0101010101010101) & w & 0x8080808080808080;
        if (ff != 0) {
          const first = <i32>ctz(ff) >> 3;
          if (first < m) m = first;
        }
        if (m != 0) {
          const shift = <u64>(m << 3);
          a |= ((bswap<u64>(w) >>> (64 - shift)) << (64 - shift)) >>> <u64>n;
          n += m << 3;
          h += m << 3;
          pos = p + m;
        }
      }
      if (h < more) {
        acc = a;
        avail = n;
        ahead = h;
        if (!fill()) return 0;
        a = acc;
        n = avail;
        h = ahead + more; // fill() left the reader's own count topped up
      }
    }
    h -= more;
    const f = load<i32>(fast + (<usize>(a >>> 53) << 2));
    if (f != 0) {
      a <<= <u64>(f & 15);
      n -= f & 15;
      if (f >> 8 == 0) {
        // A symbol without a value: 16 zeros (run 15), else the end of the block.
        if (f >> 4 != 15) break;
        k += 15;
        continue;
      }
      k += (f >> 4) & 15;
      if (!dcOnly) {
        const z = <usize>load<i32>(ZIGZAG + (<usize>k << 2)) << 2;
        store<i32>(blk + z, (f >> 8) * load<i32>(q + z));
      }
      continue;
    }
    let rs: i32;
    const e = <i32>load<u16>(lookup + (<usize>(a >>> 55) << 1));
    if (e != 0) {
      a <<= <u64>(e >> 8);
      n -= e >> 8;
      rs = e & 0xff;
    } else {
      acc = a;
      avail = n;
      ahead = h;
      rs = decodeLong(ac);
      if (rs < 0) return 0;
      a = acc;
      n = avail;
      h = ahead;
    }
    const run = rs >> 4;
    const size = rs & 15;
    if (size != 0) {
      k += run;
      if (n - h < size) {
        acc = a;
        avail = n;
        ahead = h;
        if (!fill()) return 0;
        a = acc;
        n = avail;
        h = ahead;
      }
      if (!dcOnly) {
        const z = <usize>load<i32>(ZIGZAG + (<usize>k << 2)) << 2;
        store<i32>(blk + z, extendBits(a, size) * load<i32>(q + z));
      }
      a <<= <u64>size;
      n -= size;
    } else if (run != 15) {
      break;
    } else {
      k += 15;
    }
  }
  acc = a;
  avail = n;
  ahead = h;
  return dcv;
}

// The reader's state, into STATE: where the next call starts.
@inline function saveReader(mx: i32): void {
  store<i32>(STATE + (S_POS << 2), pos - (ahead >> 3));
  // The JavaScript reader's buffer: its unread bits at the bottom.
  const bits = avail - ahead;
  store<i32>(STATE + (S_ACC << 2), bits == 0 ? 0 : <i32>(acc >>> <u64>(64 - bits)));
  store<i32>(STATE + (S_BITS << 2), avail - ahead);
  store<i32>(STATE + (S_PAD << 2), pad);
  store<i32>(STATE + (S_AT_MARKER << 2), atMarker ? 1 : 0);
  store<i32>(STATE + (S_MX << 2), mx);
}

/**
 * Decodes up to `mcus` interleaved MCUs from the copied entropy bytes data[0..length) (`isFinal`: they reach
 * the end of the bytes there are) into the band at coefs; the number decoded. The reader's state, the DC
 * predictors and the next MCU's column are read from STATE and written back after each whole MCU, so a call
 * that stops inside an MCU (NEED_MORE, TRUNCATED) leaves the state at the end of the last whole one.
 */
export function decodeMcus(dataPtr: usize, length: i32, isFinal: i32, mcus: i32, coefs: usize): i32 {
  data = dataPtr;
  len = length;
  final = isFinal != 0;
  pos = load<i32>(STATE + (S_POS << 2));
  avail = load<i32>(STATE + (S_BITS << 2));
  acc = avail == 0 ? 0 : <u64>load<u32>(STATE + (S_ACC << 2)) << <u64>(64 - avail);
  ahead = 0;
  pad = load<i32>(STATE + (S_PAD << 2));
  atMarker = load<i32>(STATE + (S_AT_MARKER << 2)) != 0;
  status = DONE;
  const n = load<i32>(STATE + (S_COMPONENTS << 2));
  let mx = load<i32>(STATE + (S_MX << 2));
  let done = 0;
  // The MCU's predictors while it decodes, kept apart until it is whole.
  const preds = STATE + (S_WORK << 2);
  v128.store(preds, v128.load(STATE + (S_PREDS << 2)));
  while (done < mcus) {
    for (let i = 0; i < n; i++) {
      const cd = STATE + ((S_COMPONENT + (<usize>i << 2)) << 2);
      const h = load<i32>(cd);
      const v = load<i32>(cd, 4);
      const band = coefs + <usize>load<i32>(cd, 8);
      const perRow = load<i32>(cd, 12);
      const dc = TABLES + <usize>i * SLOT_BYTES;
      const ac = TABLES + <usize>(4 + i) * SLOT_BYTES;
      const q = QUANT + (<usize>i << 8);
      const predAt = preds + (<usize>i << 2);
      let pred = load<i32>(predAt);
      const dcOnly = load<i32>(STATE + ((S_DC_ONLY + <usize>i) << 2)) != 0;
      for (let y = 0; y < v; y++) {
        for (let x = 0; x < h; x++) {
          const blk = band + (<usize>(y * perRow + mx * h + x) << 8);
          pred = decodeBlock(dc, ac, blk, q, pred, dcOnly);
          if (status != DONE) {
            store<i32>(STATE + (S_STATUS << 2), status);
            return done;
          }
        }
      }
      store<i32>(predAt, pred);
    }
    done++;
    mx++;
    v128.store(STATE + (S_PREDS << 2), v128.load(preds));
    saveReader(mx);
    if (avail - ahead < pad) {
      status = EXHAUSTED;
      break;
    }
  }
  store<i32>(STATE + (S_STATUS << 2), status);
  return done;
}
