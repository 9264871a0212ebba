// Cross-origin access for pages on other origins: ALLOWED_ORIGINS is "*" or a comma-separated list of
// origins (scheme://host[:port]). The API reads no cookies, and a cross-origin caller cannot send a bearer
// token (API_TOKEN, worker/auth.ts) it does not hold, so "*" lets a page do only what a direct request could.

const EXPOSED = ["server-timing", "x-edgevit-model", "x-edgevit-model-version"];
// The request headers a page may send beyond the CORS-safelisted ones.
export const ALLOWED_HEADERS = ["content-type", "accept", "authorization"];

function allowed(env: Env): string[] {
  return String(env.ALLOWED_ORIGINS ?? "")
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "");
}

// The Access-Control-Allow-Origin value for this request's Origin, or null when it is not allowed.
function allowOrigin(env: Env, origin: string | null): string | null {
  const origins = allowed(env);
  if (origins.includes("*")) return "*";
  return origin !== null && origins.includes(origin) ? origin : null;
}

// The CORS headers for an actual (non-preflight) response. Vary: Origin always, since the answer's
// headers depend on it whenever the list is not "*".
export function withCors(request: Request, env: Env, response: Response): Response {
  const origin = allowOrigin(env, request.headers.get("origin"));
  const headers = new Headers(response.headers);
  const vary = headers.get("vary");
  if (!vary?.split(",").some((v) => v.trim().toLowerCase() === "origin"))
    headers.set("vary", vary ? `${vary}, Origin` : "Origin");
  if (origin !== null) {
    headers.set("access-control-allow-origin", origin);
    headers.set("access-control-expose-headers", EXPOSED.join(", "));
    // Lets the page's PerformanceResourceTiming see the Server-Timing entries.
    headers.set("timing-allow-origin", origin);
  }
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

// The answer to an OPTIONS preflight for a route accepting `methods`: 204 with what is allowed; without
// the allow-origin header when the origin is not allowed, which the browser takes as a refusal.
export function preflight(request: Request, env: Env, methods: string[]): Response {
  const headers = new Headers({ allow: methods.join(", "), vary: "Origin" });
  const origin = allowOrigin(env, request.headers.get("origin"));
  if (origin !== null) {
    headers.set("access-control-allow-origin", origin);
    headers.set("access-control-allow-methods", methods.join(", "));
    // authorization: with API_TOKEN set, a page sends its bearer token, and the browser's preflight names it.
    headers.set("access-control-allow-headers", ALLOWED_HEADERS.join(", "));
    headers.set("access-control-max-age", "86400");
  }
  return new Response(null, { status: 204, headers });
}
