// IEEE CRC-32 (zlib's), continued from `value`: the PNG chunks' check, and the bundle payload's where
// no faster one is at hand (the engine has its own in wasm; Node's zlib has one too).
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(data: Uint8Array, value = 0): number {
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// The CRC-32 of A followed by B from crc32(A), crc32(B) and B's length (zlib's crc32_combine): pieces of a
// file read out of order (the Worker's import reads tensors by range) give the whole file's CRC-32.
// Polynomials over GF(2), bit-reflected as the CRC keeps them: the combination is crcA * x^(8 lenB) + crcB.
function multiplyModP(a: number, b: number): number {
  let m = 0x80000000;
  let product = 0;
  for (;;) {
    if (a & m) {
      product ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ 0xedb88320 : b >>> 1;
  }
  return product >>> 0;
}

// X_POW_2N[k] = x^(2^k) mod p
const X_POW_2N = new Uint32Array(32);
for (let k = 0, p = 0x40000000; k < 32; k++, p = multiplyModP(p, p)) X_POW_2N[k] = p;

export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  let xPower = 0x80000000; // x^0
  for (let n = lengthB, k = 3; n > 0; n = Math.floor(n / 2), k++)
    if (n % 2) xPower = multiplyModP(X_POW_2N[k & 31], xPower);
  return (multiplyModP(xPower, crcA) ^ crcB) >>> 0;
}
