// Files from Pillow's own test suite (test/fixtures/pillow), a conformance suite (test/fixtures/conformance)
// and files that put the orientation where Pillow looks for it (test/fixtures/metadata) through openImage,
// whole and streamed, against what Pillow 9.4 makes of them through transformers' load_image path
// (Image.open, ImageOps.exif_transpose, convert("RGB"); test/tools/corpus_pillow.py): the same pixels
// after the orientation, or a refusal with a sentence where Pillow raises. A streamed PNG whose metadata
// after the image data changes the orientation is refused as too late (its rows have gone by).

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { EdgevitError } from "../../../core/errors.ts";
import { type ImageInput, openImage } from "../../../core/image/open.ts";
import { applyOrientation } from "../../../core/image/orientation.ts";

const root = new URL("../../../", import.meta.url).pathname;
type Goldens = {
  pillow: string;
  files: Record<string, { sha256?: string; width?: number; height?: number; error?: string }>;
};

async function answer(input: ImageInput) {
  const decoder = await openImage(input, { maxPixels: 1e8 });
  const { width, height } = decoder.header;
  const data = new Uint8Array(width * height * 3);
  await decoder.decode(1, (rows, first, count) => data.set(rows.subarray(0, count * width * 3), first * width * 3));
  const image = applyOrientation({ width, height, data }, decoder.header.orientation);
  return { ...image, sha256: createHash("sha256").update(image.data).digest("hex") };
}

function streamed(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 4093) controller.enqueue(bytes.slice(i, i + 4093));
      controller.close();
    },
  });
}

describe.each(["pillow", "conformance", "metadata"])("%s", (set) => {
  const goldens: Goldens = JSON.parse(readFileSync(`${root}test/goldens/preprocess/${set}/cases.json`, "utf8"));
  test("the goldens were made by Pillow 9.4", () => expect(goldens.pillow).toBe("9.4.0"));

  test.each(Object.entries(goldens.files))("%s", async (path, pillow) => {
    const bytes = new Uint8Array(readFileSync(root + path));
    for (const input of [bytes, streamed(bytes)]) {
      if (input !== bytes && !pillow.error) {
        const late = await answer(streamed(bytes)).then(
          () => null,
          (e: unknown) => e,
        );
        if (late instanceof EdgevitError && late.code === "unsupported_media_type") {
          expect(late.message).toMatch(/orientation after its image data/);
          continue;
        }
      }
      if (pillow.error) {
        const refusal = await answer(input).then(
          () => null,
          (e: unknown) => e,
        );
        expect(refusal, `Pillow refuses it (${pillow.error})`).toBeInstanceOf(EdgevitError);
        expect((refusal as EdgevitError).code).toBe("invalid_image");
        expect((refusal as EdgevitError).message).toMatch(/^The .{20,}\.$/);
        continue;
      }
      const ours = await answer(input);
      expect([ours.width, ours.height]).toEqual([pillow.width, pillow.height]);
      expect(ours.sha256).toBe(pillow.sha256);
    }
  });
});
