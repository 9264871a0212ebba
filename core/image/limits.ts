// The pixel limit's refusal, one sentence for every decoder.
import { EdgevitError } from "../errors.ts";

const mp = (pixels: number) => (pixels / 1e6).toFixed(1);

// image_too_large when width x height (from the header) is over maxPixels.
export function checkPixels(width: number, height: number, maxPixels: number): void {
  const pixels = width * height;
  if (pixels > maxPixels) {
    throw new EdgevitError(
      "image_too_large",
      `The image is ${width}x${height} (${mp(pixels)} MP); the limit is ${mp(maxPixels)} MP.`,
    );
  }
}
