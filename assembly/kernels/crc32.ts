// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), incremental like zlib.crc32(data, crc):
// pass 0 to start, the previous result to continue.
// The fast form is slicing-by-8: eight 256-entry tables, one table lookup per input byte but no serial
// dependency inside an 8-byte block.

@lazy const POLY: u32 = 0xedb88320;
/** Tables T0..T7, u32 [8][256]; T0 is the classic byte table, Tk[i] = T(k-1)[i] >> 8 ^ T0[T(k-1)[i] & 255]. */
@lazy const TABLES: usize = memory.data(8 * 256 * 4, 64);
let tablesReady = false;

function buildTables(): void {
  for (let i: u32 = 0; i < 256; i++) {
    let c = i;
    for (let j = 0; j < 8; j++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    store<u32>(TABLES + (i << 2), c);
  }
  for (let i: u32 = 0; i < 256; i++) {
    let c = load<u32>(TABLES + (i << 2));
    for (let t: u32 = 1; t < 8; t++) {
      c = load<u32>(TABLES + ((c & 255) << 2)) ^ (c >>> 8);
      store<u32>(TABLES + ((t * 256 + i) << 2), c);
    }
  }
  tablesReady = true;
}

@inline function T(table: u32, index: u32): u32 {
  return load<u32>(TABLES + ((table * 256 + index) << 2));
}

export function crc32(crc: u32, ptr: usize, len: usize): u32 {
  if (!tablesReady) buildTables();
  let c = ~crc;
  let p = ptr;
  const end = ptr + len;
  while (p + 8 <= end) {
    const one = load<u32>(p) ^ c;
    const two = load<u32>(p, 4);
    c = T(7, one & 255) ^ T(6, (one >>> 8) & 255) ^ T(5, (one >>> 16) & 255) ^ T(4, one >>> 24) ^
        T(3, two & 255) ^ T(2, (two >>> 8) & 255) ^ T(1, (two >>> 16) & 255) ^ T(0, two >>> 24);
    p += 8;
  }
  while (p < end) {
    c = T(0, (c ^ load<u8>(p)) & 255) ^ (c >>> 8);
    p++;
  }
  return ~c;
}

/** Scalar twin of crc32: one bit at a time, no table. */
export function crc32Scalar(crc: u32, ptr: usize, len: usize): u32 {
  let c = ~crc;
  for (let i: usize = 0; i < len; i++) {
    c ^= load<u8>(ptr + i);
    for (let j = 0; j < 8; j++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
  }
  return ~c;
}
