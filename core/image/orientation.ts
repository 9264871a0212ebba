// EXIF orientation (tag 0x0112) applied as PIL's ImageOps.exif_transpose does:
// 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90
// (PIL's rotations are counter-clockwise, so 6 turns the picture 90 degrees clockwise).

import type { RgbImage } from "./source.ts";

// For output pixel (x, y) the source pixel index is base + x * stepX + y * stepY (in pixels of the
// input, whose width is w and height h).
function walk(orientation: number, w: number, h: number): { base: number; stepX: number; stepY: number } {
  const last = (h - 1) * w;
  switch (orientation) {
    case 2:
      return { base: w - 1, stepX: -1, stepY: w };
    case 3:
      return { base: last + w - 1, stepX: -1, stepY: -w };
    case 4:
      return { base: last, stepX: 1, stepY: -w };
    case 5:
      return { base: 0, stepX: w, stepY: 1 };
    case 6:
      return { base: last, stepX: -w, stepY: 1 };
    case 7:
      return { base: last + w - 1, stepX: -w, stepY: -1 };
    case 8:
      return { base: w - 1, stepX: w, stepY: -1 };
    default:
      return { base: 0, stepX: 1, stepY: w };
  }
}

export function applyOrientation(image: RgbImage, orientation: number): RgbImage {
  if (orientation < 2 || orientation > 8) return image;
  const { width: w, height: h, data } = image;
  const swap = orientation >= 5;
  const outW = swap ? h : w;
  const outH = swap ? w : h;
  const { base, stepX, stepY } = walk(orientation, w, h);
  const out = new Uint8Array(data.length);
  let o = 0;
  for (let y = 0; y < outH; y++) {
    let s = base + y * stepY;
    for (let x = 0; x < outW; x++, s += stepX) {
      const i = s * 3;
      out[o++] = data[i];
      out[o++] = data[i + 1];
      out[o++] = data[i + 2];
    }
  }
  return { width: outW, height: outH, data: out };
}
