// Every failure a client can cause, as a stable code with an HTTP status and a readable sentence.

const ERROR_STATUS = {
  invalid_image: 400,
  bad_parameter: 400,
  model_not_found: 404,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  image_too_large: 413,
  unsupported_media_type: 415,
  model_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class EdgevitError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EdgevitError";
    this.code = code;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}
