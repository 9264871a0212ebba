// The refusals the marker and entropy readers share: both are invalid_image, as Pillow refuses them.
import { EdgevitError } from "../../errors.ts";

export function corrupt(what: string): EdgevitError {
  return new EdgevitError("invalid_image", `The JPEG is corrupt: ${what}.`);
}

const TRUNCATED = "The JPEG is truncated: the file ends before its image data does.";

export function truncatedJpeg(): EdgevitError {
  return new EdgevitError("invalid_image", TRUNCATED);
}

// Every reader throws this where it runs past the end of its bytes: with a streamed file whose end has not
// arrived yet, the step is retried with more bytes instead (../bytes.ts).
export function isTruncation(error: unknown): boolean {
  return error instanceof EdgevitError && error.message === TRUNCATED;
}
