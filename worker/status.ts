// The one place a domain error becomes an HTTP status.
import type { ErrorCode } from "../core/errors.ts";

export const ERROR_STATUS: Record<ErrorCode, number> = {
  invalid_image: 400,
  bad_parameter: 400,
  model_not_found: 404,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  image_too_large: 413,
  unsupported_media_type: 415,
  model_unavailable: 503,
  unauthorized: 401,
  hub_access_denied: 403,
  unsupported_checkpoint: 422,
  hub_unavailable: 502,
  busy: 503, // with Retry-After
};
