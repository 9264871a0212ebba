// Every failure a caller can cause, as a stable code and a sentence about the caller's input. The codes
// are the same over HTTP, RPC, queues and the CLI; each host decides how a code is reported (the Worker
// maps them to HTTP statuses in worker/status.ts).

export const ERROR_CODES = [
  "invalid_image", // the bytes are not a readable image of an accepted format
  "bad_parameter", // an option out of range or of a value it does not accept
  "model_not_found", // no such model
  "not_found", // no such route or file
  "method_not_allowed",
  "payload_too_large", // the body is over the byte limit
  "image_too_large", // the image's declared size is over the pixel limit
  "unsupported_media_type", // a format that is not accepted
  "model_unavailable", // the model exists but cannot be loaded or run
  "unauthorized", // the API needs a bearer token and the request has none or a wrong one
  "hub_access_denied", // the hub refuses the repository: gated or private, and no token that may read it
  "hub_unavailable", // the hub cannot be reached, fails, or a download was cut
  "unsupported_checkpoint", // a hub repository this converter cannot turn into a bundle
  "busy", // the server has no room for this request now; worth retrying later
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class EdgevitError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EdgevitError";
    this.code = code;
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}
