// libjpeg-turbo's colour steps (jdsample.c, jdcolor.c) on hand-computed values: the one colour module both
// JPEG decoders use, the streaming one on its component rows and the jpeg-js fallback on jpeg-js's output.
import { describe, expect, test } from "vitest";
import { upsampleMethod, upsampleRow, yccToRgb } from "../../../../core/image/jpeg/color.ts";

describe("libjpeg colour steps by hand", () => {
  test("YCbCr -> RGB rounds as jdcolor.c", () => {
    const y = Uint8Array.of(128, 100, 0, 255);
    const cb = Uint8Array.of(128, 128, 255, 0);
    const cr = Uint8Array.of(128, 228, 0, 255);
    const out = new Uint8Array(12);
    yccToRgb(y, 0, cb, 0, cr, 0, out, 0, 4);
    expect(Array.from(out)).toEqual([128, 128, 128, 240, 29, 100, 0, 48, 225, 255, 208, 28]);
  });

  // One upsampled chroma row per output row: `near` is the component row the output row falls in, `far`
  // the row above it (even output rows) or below it (odd ones), clamped to the component's rows.
  function upsampled(plane: number[][], hs: number, vs: number, width: number, height: number): number[][] {
    const cw = plane[0].length;
    const flat = Uint8Array.from(plane.flat());
    const method = upsampleMethod(hs, vs, cw, true);
    const rows: number[][] = [];
    for (let y = 0; y < height; y++) {
      const near = vs === 2 ? y >> 1 : y;
      const far = vs === 2 ? Math.min(Math.max(y & 1 ? near + 1 : near - 1, 0), plane.length - 1) : near;
      const out = new Uint8Array(width + 8);
      upsampleRow(method, hs, cw, flat, near * cw, far * cw, (y & 1) === 1, out, width);
      rows.push(Array.from(out.subarray(0, width)));
    }
    return rows;
  }

  test("h2v1: 3/4 nearer + 1/4 farther, biases 1 and 2, edges repeat", () => {
    expect(upsampled([[0, 100, 200]], 2, 1, 6, 1)[0]).toEqual([0, 25, 75, 125, 175, 200]);
  });

  test("h2v2: column sums 3:1 with the row above/below, then 3:1 across, biases 8 and 7", () => {
    const rows = upsampled(
      [
        [0, 100, 200],
        [40, 40, 40],
      ],
      2,
      2,
      6,
      4,
    );
    expect(rows[0]).toEqual([0, 25, 75, 125, 175, 200]);
    expect(rows[1]).toEqual([10, 29, 66, 104, 141, 160]);
  });

  test("h1v2 with an odd height: biases 1 and 2, the top row repeats itself", () => {
    expect(upsampled([[0], [100]], 1, 2, 1, 3).flat()).toEqual([0, 25, 75]);
  });

  test("libjpeg replicates a subsampled row of two samples or fewer, and without context rows", () => {
    expect(upsampleMethod(1, 1, 5, true)).toBe("full");
    expect(upsampleMethod(2, 1, 2, true)).toBe("replicate");
    expect(upsampleMethod(2, 2, 2, true)).toBe("replicate");
    expect(upsampleMethod(1, 2, 1, true)).toBe("h1v2");
    expect(upsampleMethod(2, 2, 3, false)).toBe("replicate");
    expect(upsampleMethod(4, 1, 9, true)).toBe("replicate");
  });
});
