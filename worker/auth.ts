// Optional access control: when the `API_TOKEN` secret is set (`wrangler secret put API_TOKEN`), every
// API route needs `Authorization: Bearer <token>`. /healthz stays open for uptime checks, and so do GET
// and HEAD of paths outside /v1/ (the page's static files) and CORS preflights.

import { EdgevitError } from "../core/errors.ts";
import { errorResponse } from "./http.ts";

function isPublic(request: Request, url: URL): boolean {
  // A CORS preflight carries no credentials by design; the request it clears is checked.
  if (url.pathname === "/healthz" || request.method === "OPTIONS") return true;
  const api = url.pathname === "/v1" || url.pathname.startsWith("/v1/");
  return (request.method === "GET" || request.method === "HEAD") && !api;
}

const encoder = new TextEncoder();

// Equal without a timing side channel: both are hashed first, so the comparison neither stops at the
// first differing byte nor reveals the token's length.
async function sameToken(given: string, token: string): Promise<boolean> {
  const [a, b] = await Promise.all([given, token].map((s) => crypto.subtle.digest("SHA-256", encoder.encode(s))));
  return crypto.subtle.timingSafeEqual(a, b);
}

// The 401 for a request that may not call the API, or null when it may.
export async function refuse(request: Request, env: Env, url: URL): Promise<Response | null> {
  const token = env.API_TOKEN;
  if (!token || isPublic(request, url)) return null;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
  if (match && (await sameToken(match[1], token))) return null;
  const challenge = match ? 'Bearer realm="edgevit", error="invalid_token"' : 'Bearer realm="edgevit"';
  return errorResponse(
    new EdgevitError(
      "unauthorized",
      match ? "the bearer token is not valid for this API" : "this API needs an Authorization: Bearer <token> header",
    ),
    { "www-authenticate": challenge },
  );
}
