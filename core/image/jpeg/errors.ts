// The refusals the marker and entropy readers share: both are invalid_image, as Pillow refuses them.
import { EdgevitError } from "../../errors.ts";

export function corrupt(what: string): EdgevitError {
  return new EdgevitError("invalid_image", `The JPEG is corrupt: ${what}.`);
}

export function truncatedJpeg(): EdgevitError {
  return new EdgevitError("invalid_image", "The JPEG is truncated: the file ends before its image data does.");
}
