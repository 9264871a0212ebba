// The JPEG decoder against Pillow 9.4 (libjpeg-turbo 2.1): every fixture at every DCT scale, bit-exact by
// sha256 of Pillow's RGB (goldens from test/tools/jpeg_goldens.py), plus jpeg-js as an independent
// cross-check at full scale, refusals of broken files, the declined flavours, the work bounds and the
// streaming contract.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { decode as jpegJsDecode } from "jpeg-js";
import { describe, expect, test } from "vitest";
import { EdgevitError } from "../../../../core/errors.ts";
import { ARITHMETIC_STATS_BYTES } from "../../../../core/image/jpeg/arithmetic.ts";
import { type JpegDecoder, openJpeg } from "../../../../core/image/jpeg/index.ts";

const FIXTURES = new URL("../../../fixtures/", import.meta.url);

interface Golden {
  pillow: string;
  width?: number;
  height?: number;
  orientation?: number;
  scales?: Record<string, { width: number; height: number; sha256: string; by: string }>;
}

const goldens: Record<string, Golden> = JSON.parse(readFileSync(new URL("jpeg/goldens.json", FIXTURES), "utf8"));
const bytesOf = (name: string) => new Uint8Array(readFileSync(new URL(name, FIXTURES)));
const LIMITS = { maxPixels: 100_000_000 };

// Decodes at `scale`, gathering the pushed rows into one (height, width, 3) picture and checking the row
// contract on the way: rows arrive in order, top to bottom, without gaps.
async function decodeAll(bytes: Uint8Array, scale: number, limits = LIMITS) {
  const d = openJpeg(bytes, limits);
  const width = Math.ceil(d.header.width / scale);
  const height = Math.ceil(d.header.height / scale);
  const rgb = new Uint8Array(width * height * 3);
  let next = 0;
  let maxBatch = 0;
  const size = await d.decode(scale, (rows, first, count) => {
    expect(first).toBe(next);
    expect(rows.length).toBe(count * width * 3);
    rgb.set(rows.subarray(0, count * width * 3), first * width * 3);
    next = first + count;
    maxBatch = Math.max(maxBatch, count);
  });
  expect(size).toEqual({ width, height });
  expect(next).toBe(height);
  return { decoder: d, width, height, rgb, maxBatch };
}

async function errorOf(fn: () => unknown): Promise<EdgevitError> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof EdgevitError)) throw err;
    return err;
  }
  throw new Error("expected an EdgevitError, nothing was thrown");
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const decodable = Object.entries(goldens).filter(([name, g]) => g.pillow === "decodes" && !name.includes("declined"));

describe("bit-exact with Pillow", () => {
  test.each(decodable.flatMap(([name]) => [1, 2, 4, 8].map((s) => [name, s] as const)))(
    "%s at 1/%d",
    async (name, scale) => {
      const g = goldens[name];
      const want = g.scales?.[String(scale)];
      expect(want).toBeDefined();
      const { rgb, width, height, decoder } = await decodeAll(bytesOf(name), scale);
      expect({ width, height }).toEqual({ width: want?.width, height: want?.height });
      expect(sha256(rgb)).toBe(want?.sha256);
      expect(decoder.header.orientation).toBe(g.orientation);
    },
  );

  test("every flavour the issue lists is among the goldens", async () => {
    const names = decodable.map(([n]) => n).join(" ");
    for (const flavour of [
      "422",
      "440",
      "411",
      "progressive-420",
      "progressive-444",
      "progressive-dc-only",
      "restart",
      "rgb",
      "cmyk-adobe",
    ]) {
      expect(names).toContain(flavour);
    }
    for (const flavour of ["ycck", "cmyk-no-adobe", "progressive-gray", "33x17", "multiscan", "damaged-early-eoi"]) {
      expect(names).toContain(flavour);
    }
    for (const flavour of ["420", "444", "422-restart", "multiscan", "progressive-420", "progressive-restart"]) {
      expect(names).toContain(`arithmetic-${flavour}`);
    }
    for (const flavour of ["progressive-gray", "conditioning", "progressive-conditioning", "damaged-restart"]) {
      expect(names).toContain(`arithmetic-${flavour}`);
    }
  });
});

describe("header", () => {
  test("sizes, orientation and scales come from the header alone", async () => {
    const d = openJpeg(bytesOf("images/rocket-exif-orient6.jpg"), LIMITS);
    expect(d.header).toEqual({ format: "jpeg", width: 640, height: 427, orientation: 6, scales: [1, 2, 4, 8] });
    expect(openJpeg(bytesOf("jpeg/exif-orient6-24x16.jpg"), LIMITS).header.orientation).toBe(6);
  });

  test("colour spaces as libjpeg guesses them", async () => {
    const space = (n: string) => (openJpeg(bytesOf(n), LIMITS) as JpegDecoder).colorSpace;
    expect(space("jpeg/baseline-rgb-30x20.jpg")).toBe("rgb");
    expect(space("jpeg/cmyk-adobe-37x22.jpg")).toBe("cmyk");
    expect(space("jpeg/ycck-adobe-37x22.jpg")).toBe("ycck");
    expect(space("jpeg/cmyk-no-adobe-37x22.jpg")).toBe("cmyk");
    expect(space("images/camera-grayscale.jpg")).toBe("gray");
    expect(space("images/cat-baseline-420.jpg")).toBe("ycbcr");
  });

  test("image_too_large from the declared size, before any decoding", async () => {
    const err = await errorOf(() =>
      openJpeg(bytesOf("images/invalid-bomb-60000x60000.jpg"), { maxPixels: 24_000_000 }),
    );
    expect(err.code).toBe("image_too_large");
    expect(err.message).toMatch(/^The image is 60000x60000 .*\.$/);
  });
});

describe("jpeg-js cross-check at full scale", () => {
  // jpeg-js has its own IDCT and upsampling; libjpeg-turbo's differ by a few levels at most. Left out, as
  // jpeg-js cannot serve as a reference there: CMYK/YCCK (jpeg-js does not invert as Pillow does), damaged
  // data and missing Huffman tables (jpeg-js refuses both, Pillow decodes both), a luma plane smaller than
  // chroma (jpeg-js samples it by nearest neighbour: mean difference 7 levels), and progressive scans with
  // restart markers (jpeg-js stops at the DHT after the first scan: "unexpected marker: ffc4"), arithmetic
  // coding, which jpeg-js does not read, and a progression that stops early (jpeg-js does not smooth blocks).
  const skip = /cmyk|ycck|damaged|no-huffman|chroma-larger|progressive-restart|arithmetic|dc-only/;
  const comparable = decodable.filter(([name]) => !skip.test(name));
  test.each(comparable.map(([n]) => n))("%s", async (name) => {
    const bytes = bytesOf(name);
    const mine = await decodeAll(bytes, 1);
    // jpeg-js would convert Adobe-transform-0 RGB as YCbCr unless told otherwise.
    const colorTransform = name.includes("rgb") ? false : undefined;
    const options = { useTArray: true as const, formatAsRGBA: false, maxMemoryUsageInMB: 1024, colorTransform };
    const other = jpegJsDecode(bytes, options);
    expect([other.width, other.height]).toEqual([mine.width, mine.height]);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < mine.rgb.length; i++) {
      const d = Math.abs(mine.rgb[i] - other.data[i]);
      sum += d;
      max = Math.max(max, d);
    }
    // Fancy upsampling (libjpeg) against jpeg-js's own at chroma edges can differ more, on a few pixels.
    expect(sum / mine.rgb.length).toBeLessThan(1.5);
    expect(max).toBeLessThanOrEqual(64);
  });
});

describe("refusals", () => {
  const refused = Object.entries(goldens).filter(([, g]) => g.pillow.startsWith("refused"));
  test.each(refused.map(([n]) => n))("%s: Pillow refuses it, so does the decoder, with a sentence", async (name) => {
    const bytes = bytesOf(name);
    const err = await errorOf(() => {
      const d = openJpeg(bytes, { maxPixels: 24_000_000 });
      return d.decode(1, () => {});
    });
    expect(["invalid_image", "image_too_large"]).toContain(err.code);
    expect(err.message).toMatch(/^The [A-Za-z]+ .*\.$/);
    expect(err.message).not.toMatch(/undefined|null|NaN|TypeError|of range/);
  });

  test("the reasons name what is wrong", async () => {
    const reason = async (n: string) => (await errorOf(() => openJpeg(bytesOf(n), LIMITS).decode(1, () => {}))).message;
    expect(await reason("jpeg/refused-sos-no-components.jpg")).toBe(
      "The JPEG is corrupt: its scan header lists no components.",
    );
    expect(await reason("jpeg/refused-sampling-5.jpg")).toMatch(/sampling factor/);
    expect(await reason("jpeg/refused-12-bit.jpg")).toMatch(/12-bit/);
    expect(await reason("jpeg/refused-no-quant.jpg")).toMatch(/quantization table/);
    expect(await reason("jpeg/refused-progressive-ss-gt-se.jpg")).toMatch(/spectral band/);
    expect(await reason("jpeg/refused-truncated.jpg")).toMatch(/truncated/);
    expect(await reason("jpeg/refused-arithmetic-truncated.jpg")).toMatch(/truncated/);
    expect(await reason("jpeg/refused-arithmetic-conditioning.jpg")).toMatch(/conditioning has a DC bound L above U/);
    expect(await reason("images/invalid-empty.jpg")).toMatch(/not a JPEG/);
  });

  test("every prefix of a file is refused or decoded, never a crash", async () => {
    const whole = bytesOf("jpeg/progressive-restart-420-50x40.jpg");
    for (let n = 0; n < whole.length; n += 7) {
      try {
        await openJpeg(whole.subarray(0, n), LIMITS).decode(2, () => {});
      } catch (err) {
        expect(err).toBeInstanceOf(EdgevitError);
      }
    }
  });
});

describe("arithmetic coding", () => {
  // Pillow feeds libjpeg-turbo 64 KB per read, and libjpeg-turbo cannot wait for more data inside an
  // arithmetic-coded scan: the goldens hold a file whose scan crosses the end of the first read (refused)
  // and one whose later scans start and end within the second read (decoded).
  test("a scan that runs past the end of Pillow's read is refused, naming the byte", async () => {
    const err = await errorOf(() =>
      openJpeg(bytesOf("jpeg/refused-arithmetic-64k-read.jpg"), LIMITS).decode(1, () => {}),
    );
    expect(err.code).toBe("invalid_image");
    expect(err.message).toMatch(/^The JPEG is arithmetic-coded and a scan's data runs past byte 65536, .*\.$/);
    expect(goldens["jpeg/arithmetic-second-64k-read-40x24.jpg"].pillow).toBe("decodes");
  });

  test("every prefix of a file is refused or decoded, never a crash", async () => {
    for (const name of ["arithmetic-progressive-restart-420-50x40.jpg", "arithmetic-422-restart-50x40.jpg"]) {
      const whole = bytesOf(`jpeg/${name}`);
      for (let n = 0; n < whole.length; n += 5) {
        try {
          await openJpeg(whole.subarray(0, n), LIMITS).decode(n % 2 ? 1 : 4, () => {});
        } catch (err) {
          expect(err).toBeInstanceOf(EdgevitError);
        }
      }
    }
  });

  test("progressive scans count against the coefficient budget as Huffman ones do", async () => {
    const { decoder } = await decodeAll(bytesOf("jpeg/arithmetic-progressive-gray-45x30.jpg"), 1);
    const d = decoder as JpegDecoder;
    // cjpeg's grayscale progression: DC, then AC 1-5, 6-63 at Al=2, 1-63 at Al=1, 1-63 and DC refined.
    const blocks = 6 * 4;
    expect(d.stats.scans).toBe(6);
    expect(d.stats.coefficientVisits).toBe(blocks * (1 + 5 + 58 + 63 + 63 + 1));
  });

  test("the statistics areas are in the memory plan", async () => {
    const bytes = bytesOf("jpeg/arithmetic-420-20x12.jpg");
    // The same header read as a Huffman-coded frame (SOF9 made SOF1): only the statistics differ.
    const huffman = bytes.slice();
    huffman[huffman.findIndex((x, i) => x === 0xc9 && huffman[i - 1] === 0xff)] = 0xc1;
    for (const scale of [1, 2, 4, 8]) {
      expect(openJpeg(bytes, LIMITS).memoryBytes(scale) - openJpeg(huffman, LIMITS).memoryBytes(scale)).toBe(
        ARITHMETIC_STATS_BYTES,
      );
    }
  });
});

describe("bounded work", () => {
  test("a valid 100-scan progression decodes within the coefficient budget", async () => {
    const { decoder } = await decodeAll(bytesOf("jpeg/progressive-100-scans-gray-48x40.jpg"), 1);
    const d = decoder as JpegDecoder;
    expect(d.stats.scans).toBe(100);
    const blocks = 6 * 5;
    // DC twice, each AC coefficient twice: 2 * 64 visits per block.
    expect(d.stats.coefficientVisits).toBe(blocks * 128);
  });

  test("300 scans are refused at the scan cap, before the 257th is decoded", async () => {
    const limits = { ...LIMITS, maxCoefficientPasses: 1000, maxVisitsPerByte: 1000 };
    const d = openJpeg(bytesOf("jpeg/declined-300-scans.jpg"), limits) as JpegDecoder;
    const err = await errorOf(() => d.decode(1, () => {}));
    expect(err.code).toBe("invalid_image");
    expect(err.message).toMatch(/more than 256 scans/);
    expect(d.stats.scans).toBe(256);
  });

  test("by default the coefficient budget stops them sooner: 16 passes over the coefficients", async () => {
    const d = openJpeg(bytesOf("jpeg/declined-300-scans.jpg"), LIMITS) as JpegDecoder;
    expect((await errorOf(() => d.decode(1, () => {}))).message).toMatch(/decoding work/);
    expect(d.stats.coefficientVisits).toBeLessThanOrEqual(17 * 64 * 24);
    expect(d.stats.scans).toBeLessThan(30);
  });

  test("the per-byte budget: a file may not ask for more than 3 passes plus 64 visits per byte", async () => {
    const bytes = bytesOf("jpeg/declined-300-scans.jpg");
    const d = openJpeg(bytes, { ...LIMITS, maxVisitsPerByte: 0 }) as JpegDecoder;
    expect((await errorOf(() => d.decode(1, () => {}))).message).toMatch(/decoding work/);
    expect(d.stats.coefficientVisits).toBeGreaterThan(3 * 64 * 24);
    expect(d.stats.coefficientVisits).toBeLessThanOrEqual(4 * 64 * 24);
  });

  test("the coefficient budget stops repeated refinement scans", async () => {
    const d = openJpeg(bytesOf("jpeg/declined-300-scans.jpg"), { ...LIMITS, maxCoefficientPasses: 8 }) as JpegDecoder;
    const err = await errorOf(() => d.decode(1, () => {}));
    expect(err.message).toMatch(/decoding work/);
    const blocks = 6 * 4;
    expect(d.stats.coefficientVisits).toBeGreaterThan(8 * 64 * blocks);
    expect(d.stats.coefficientVisits).toBeLessThanOrEqual(9 * 64 * blocks);
  });
});

describe("coefficient memory of progressive files", () => {
  // coffee-progressive.jpg: 600x400, 4:2:0, so 38x25 MCUs: 76x50 luma blocks and 38x25 per chroma component.
  test("only what the scale's IDCT reads is kept", async () => {
    const d = openJpeg(bytesOf("images/coffee-progressive.jpg"), LIMITS) as JpegDecoder;
    // 1/1: all 64 int16 coefficients plus a last-nonzero byte per block.
    expect(d.coefficientBytes(1)).toBe((3800 + 2 * 950) * (128 + 1));
    // 1/8: luma keeps its DC (2 bytes + 8 bytes of nonzero bits); chroma, upscaled to a 2x2 IDCT, 25.
    expect(d.coefficientBytes(8)).toBe(3800 * (2 + 8) + 2 * 950 * (50 + 8));
    expect((openJpeg(bytesOf("images/cat-baseline-420.jpg"), LIMITS) as JpegDecoder).coefficientBytes(1)).toBe(0);
  });

  test("over maxCoefficientBytes a scale is image_too_large; a smaller scale still decodes", async () => {
    const d = openJpeg(bytesOf("images/coffee-progressive.jpg"), { ...LIMITS, maxCoefficientBytes: 700_000 });
    const err = await errorOf(() => d.decode(1, () => {}));
    expect(err.code).toBe("image_too_large");
    expect(err.message).toMatch(/^The JPEG is 600x400 and progressive: .*\.$/);
    expect(await d.decode(8, () => {})).toEqual({ width: 75, height: 50 });
  });
});

describe("streaming", () => {
  test("a baseline file arrives one MCU row (16 rows at 4:2:0) at a time", async () => {
    expect((await decodeAll(bytesOf("images/cat-baseline-420.jpg"), 1)).maxBatch).toBe(16);
    expect((await decodeAll(bytesOf("images/cat-baseline-420.jpg"), 8)).maxBatch).toBe(2);
  });

  test("decode can run again, at another scale", async () => {
    const bytes = bytesOf("images/coffee-progressive.jpg");
    const d = openJpeg(bytes, LIMITS);
    const sizes = [await d.decode(8, () => {}), await d.decode(1, () => {})];
    expect(sizes).toEqual([
      { width: 75, height: 50 },
      { width: 600, height: 400 },
    ]);
  });

  test("a scale the decoder does not offer is a bad parameter", async () => {
    const err = await errorOf(() => openJpeg(bytesOf("images/cat-tiny-37x23.jpg"), LIMITS).decode(3, () => {}));
    expect(err.code).toBe("bad_parameter");
  });
});
