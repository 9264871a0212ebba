// Files from Pillow's own test suite (test/fixtures/pillow/README.md) through openImage, whole and streamed,
// against what Pillow 9.4 makes of them through transformers' load_image path (Image.open,
// ImageOps.exif_transpose, convert("RGB")): the same pixels after the orientation, or a refusal with a
// sentence where Pillow raises.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { EdgevitError } from "../../../core/errors.ts";
import { type ImageInput, openImage } from "../../../core/image/open.ts";
import { applyOrientation } from "../../../core/image/orientation.ts";

const root = new URL("../../../", import.meta.url).pathname;
const goldens: {
  pillow: string;
  files: Record<string, { sha256?: string; width?: number; height?: number; error?: string }>;
} = JSON.parse(readFileSync(`${root}test/goldens/preprocess/pillow/cases.json`, "utf8"));

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

describe("Pillow's test images", () => {
  test("the goldens were made by Pillow 9.4", () => expect(goldens.pillow).toBe("9.4.0"));

  test.each(Object.entries(goldens.files))("%s", async (path, pillow) => {
    const bytes = new Uint8Array(readFileSync(root + path));
    for (const input of [bytes, streamed(bytes)]) {
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
