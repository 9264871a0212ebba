import { describe, expect, test } from "vitest";
import { EdgevitError } from "../../../../core/errors.ts";
import { decodeJpeg, readJpegInfo } from "../../../../core/image/jpeg/fallback.ts";
import { applyOrientation } from "../../../../core/image/orientation.ts";
import { decodedPhoto, fixture, goldenBytes, goldens, maxAbsDiff } from "../goldens.ts";

function errorOf(fn: () => unknown): EdgevitError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EdgevitError);
    return err as EdgevitError;
  }
  throw new Error("expected an EdgevitError, nothing was thrown");
}

describe("readJpegInfo", () => {
  test.each([
    ["cat-baseline-420.jpg", 451, 300, 3, false, 1],
    ["coffee-progressive.jpg", 600, 400, 3, true, 1],
    ["camera-grayscale.jpg", 512, 512, 1, false, 1],
    ["astronaut-444.jpg", 512, 512, 3, false, 1],
    ["hubble-cmyk.jpg", 640, 520, 4, false, 1],
    ["rocket-exif-orient6.jpg", 640, 427, 3, false, 6],
    ["retina-restart-markers.jpg", 1411, 1411, 3, false, 1],
    ["cat-tiny-37x23.jpg", 37, 23, 3, false, 1],
  ])(
    "%s: %dx%d, %d components, progressive %s, orientation %d",
    (name, width, height, components, progressive, orientation) => {
      expect(readJpegInfo(fixture(name))).toMatchObject({ width, height, components, progressive, orientation });
    },
  );

  test("colour space and sampling as libjpeg sees them", () => {
    expect(readJpegInfo(fixture("cat-baseline-420.jpg"))).toMatchObject({
      colorSpace: "ycbcr",
      sampling: [
        { h: 2, v: 2 },
        { h: 1, v: 1 },
        { h: 1, v: 1 },
      ],
    });
    expect(readJpegInfo(fixture("astronaut-444.jpg")).sampling).toEqual([
      { h: 1, v: 1 },
      { h: 1, v: 1 },
      { h: 1, v: 1 },
    ]);
    expect(readJpegInfo(fixture("camera-grayscale.jpg")).colorSpace).toBe("gray");
    expect(readJpegInfo(fixture("hubble-cmyk.jpg"))).toMatchObject({ colorSpace: "cmyk", adobeTransform: 0 });
  });

  test("reads a big-endian (MM) Exif orientation from a hand-built header", () => {
    const tiff = [0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    const exif = [0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff];
    const app1 = [0xff, 0xe1, (exif.length + 2) >> 8, (exif.length + 2) & 255, ...exif];
    const sof0 = [0xff, 0xc0, 0, 11, 8, 0, 7, 0, 9, 1, 1, 0x11, 0];
    const bytes = new Uint8Array([0xff, 0xd8, ...app1, 0xff, 0xff, ...sof0]); // 0xff fill byte before SOF
    expect(readJpegInfo(bytes)).toEqual({
      width: 9,
      height: 7,
      components: 1,
      progressive: false,
      orientation: 8,
      colorSpace: "gray",
      adobeTransform: -1,
      sampling: [{ h: 1, v: 1 }],
    });
  });

  test("sizes the 60000x60000 bomb without decoding it", () => {
    const info = readJpegInfo(fixture("invalid-bomb-60000x60000.jpg"));
    expect([info.width, info.height]).toEqual([60000, 60000]);
  });
});

describe("decodeJpeg on the fixture photos", () => {
  test.each(goldens.endToEnd.map((e) => [e.photo, e] as const))(
    "%s matches PIL's decode in size and colour",
    (photo, golden) => {
      const image = decodedPhoto(photo);
      expect([image.width, image.height]).toEqual([golden.decoded.width, golden.decoded.height]);
      expect(image.data.length).toBe(image.width * image.height * 3);
      const sums = [0, 0, 0];
      let gray = true;
      for (let i = 0; i < image.data.length; i += 3) {
        for (let c = 0; c < 3; c++) sums[c] += image.data[i + c];
        if (image.data[i] !== image.data[i + 1] || image.data[i + 1] !== image.data[i + 2]) gray = false;
      }
      const means = sums.map((s) => s / (image.width * image.height));
      // Same chroma upsampling and colour conversion as libjpeg; only IDCT rounding differs: channel
      // means agree within a quarter level on every photo, CMYK and grayscale included.
      for (let c = 0; c < 3; c++) expect(Math.abs(means[c] - golden.decodedMean[c])).toBeLessThan(0.25);
      expect(gray).toBe(golden.decodedGray);
    },
  );

  // Odd sizes in 4:2:0 and 4:2:2: chroma upsampling at the right and bottom edges, pixel by pixel.
  test.each(Object.entries(goldens.decoded))("%s: every pixel within 3 levels of PIL's decode", (name, golden) => {
    const image = decodeJpeg(fixture(name));
    expect([image.width, image.height]).toEqual([golden.width, golden.height]);
    const { max, mean } = maxAbsDiff(image.data, goldenBytes(`${name}.pil.u8.gz`));
    console.log(`${name}: mean |d| ${mean.toFixed(3)}, max ${max}`);
    expect(max).toBeLessThanOrEqual(3);
    expect(mean).toBeLessThan(0.25);
  });

  test("EXIF orientation 6 turns the rocket upright (portrait), as exif_transpose does", () => {
    const image = decodedPhoto("rocket-exif-orient6.jpg");
    expect([image.width, image.height]).toEqual([427, 640]);
  });

  const orientations = Object.entries(goldens.orientation);
  test.each(orientations)("%s decodes like PIL's exif_transpose", (name, golden) => {
    const image = decodeJpeg(fixture(name));
    expect([image.width, image.height]).toEqual([golden.width, golden.height]);
    const own = maxAbsDiff(image.data, goldenBytes(`${name}.pil.u8.gz`));
    expect(own.mean).toBeLessThan(3);
    // Every other orientation of the same shape is far away: the picture is asymmetric.
    for (const [other, g] of orientations) {
      if (other === name || g.width !== golden.width) continue;
      expect(maxAbsDiff(image.data, goldenBytes(`${other}.pil.u8.gz`)).mean).toBeGreaterThan(40);
    }
  });
});

describe("applyOrientation", () => {
  // 3x2 image whose red channel numbers the pixels 1..6 in row-major order.
  const image = { width: 3, height: 2, data: new Uint8Array([1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0, 5, 0, 0, 6, 0, 0]) };
  const red = (o: number) => {
    const r = applyOrientation(image, o);
    return { w: r.width, h: r.height, px: Array.from(r.data.filter((_, i) => i % 3 === 0)) };
  };
  test.each([
    [1, 3, 2, [1, 2, 3, 4, 5, 6]],
    [2, 3, 2, [3, 2, 1, 6, 5, 4]],
    [3, 3, 2, [6, 5, 4, 3, 2, 1]],
    [4, 3, 2, [4, 5, 6, 1, 2, 3]],
    [5, 2, 3, [1, 4, 2, 5, 3, 6]],
    [6, 2, 3, [4, 1, 5, 2, 6, 3]],
    [7, 2, 3, [6, 3, 5, 2, 4, 1]],
    [8, 2, 3, [3, 6, 2, 5, 1, 4]],
  ])("orientation %d by hand", (o, w, h, px) => {
    expect(red(o)).toEqual({ w, h, px });
  });
});

describe("broken input", () => {
  test.each([
    ["invalid-empty.jpg", "invalid_image"],
    ["invalid-random-bytes.jpg", "invalid_image"],
    ["invalid-truncated.jpg", "invalid_image"],
    ["invalid-bomb-60000x60000.jpg", "image_too_large"],
    ["cat.png", "invalid_image"],
  ])("%s gives %s", (name, code) => {
    const err = errorOf(() => decodeJpeg(fixture(name)));
    expect(err.code).toBe(code);
    expect(err.message.length).toBeGreaterThan(10);
  });

  test("a PNG is named and refused because only JPEG is supported", () => {
    expect(errorOf(() => decodeJpeg(fixture("cat.png"))).message).toMatch(/PNG.*only JPEG is supported/);
  });

  test("limits: pixel count from the header, jpeg-js memory accounting", () => {
    const astronaut = fixture("astronaut-444.jpg");
    expect(errorOf(() => decodeJpeg(astronaut, { maxPixels: 512 * 511, maxJpegJsMemoryMB: 256 })).code).toBe(
      "image_too_large",
    );
    expect(errorOf(() => decodeJpeg(astronaut, { maxPixels: 512 * 512, maxJpegJsMemoryMB: 1 })).code).toBe(
      "image_too_large",
    );
    expect(decodeJpeg(astronaut, { maxPixels: 512 * 512, maxJpegJsMemoryMB: 16 }).width).toBe(512);
  });

  test("every truncation of real JPEGs is invalid_image; random corruption decodes or fails cleanly, quickly", () => {
    let seed = 12345;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const outcomes = { decoded: 0, invalid_image: 0, image_too_large: 0 };
    const attempt = (bytes: Uint8Array): keyof typeof outcomes => {
      const start = performance.now();
      try {
        const image = decodeJpeg(bytes);
        expect(image.data.length).toBe(image.width * image.height * 3);
        return "decoded";
      } catch (err) {
        expect(err).toBeInstanceOf(EdgevitError);
        return (err as EdgevitError).code as keyof typeof outcomes;
      } finally {
        expect(performance.now() - start).toBeLessThan(5000);
      }
    };
    for (const name of [
      "cat-baseline-420.jpg",
      "coffee-progressive.jpg",
      "retina-restart-markers.jpg",
      "hubble-cmyk.jpg",
    ]) {
      const good = fixture(name);
      for (let i = 1; i < 13; i++) {
        expect(attempt(good.subarray(0, Math.floor((good.length * i) / 13))), `${name} cut at ${i}/13`).toBe(
          "invalid_image",
        );
      }
      for (let i = 0; i < 12; i++) {
        const bad = good.slice();
        for (let j = 0; j < 1 + 2 * i; j++) bad[Math.floor(random() * bad.length)] = Math.floor(random() * 256);
        outcomes[attempt(bad)]++;
      }
    }
    console.log("corrupted inputs:", outcomes);
    expect(outcomes.invalid_image).toBeGreaterThan(0);
  });
});
