// The HTTP router: path and method to a handler in api.ts, access control first, CORS and HEAD around
// every answer, and every failure a handler throws as a JSON error. The default export's fetch and the
// Edgevit entrypoint's (rpc.ts) both answer with serve(), so a service binding reaches the same routes.

import { MODEL_PREFIX, modelRoutes, routes, TEXT_ROUTES, textRoutes } from "./api.ts";
import { EdgevitError } from "../core/errors.ts";
import { clientGone, errorResponse, failure, Held } from "./http.ts";
import { ClientDisconnected, discardBody } from "./input.ts";
import { Busy } from "./memory.ts";
import { refuse } from "./auth.ts";
import { preflight, withCors } from "./cors.ts";

// The methods a route answers: its own, HEAD wherever GET is, and OPTIONS (CORS preflight).
function methodsOf(methods: Record<string, unknown>): string[] {
  return [...Object.keys(methods), ...("GET" in methods ? ["HEAD"] : []), "OPTIONS"];
}

async function route(request: Request, env: Env, ctx?: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  const unauthorized = await refuse(request, env, url);
  if (unauthorized) return unauthorized;
  const known =
    routes[url.pathname] ??
    (url.pathname.startsWith(MODEL_PREFIX) && url.pathname.length > MODEL_PREFIX.length ? modelRoutes : undefined);
  if (!known) return errorResponse(new EdgevitError("not_found", `no route ${url.pathname}`));
  const text = env.SERVES === "text";
  if (text && !TEXT_ROUTES.has(url.pathname)) {
    return errorResponse(
      new EdgevitError(
        "not_found",
        `this Worker serves the text towers only (${[...TEXT_ROUTES].join(", ")}), not ${url.pathname}`,
      ),
    );
  }
  const methods = text ? textRoutes[url.pathname] : known;
  if (request.method === "OPTIONS") return preflight(request, env, methodsOf(methods));
  const handler = methods[request.method] ?? (request.method === "HEAD" ? methods.GET : undefined);
  if (!handler) {
    const allow = methodsOf(methods).join(", ");
    return errorResponse(
      new EdgevitError("method_not_allowed", `${url.pathname} accepts ${allow}, not ${request.method}`),
      { allow },
    );
  }
  // The memory the handler reserves comes back on every path out of it (a streamed answer's when its body
  // is done).
  const held = new Held(ctx);
  try {
    return await handler(request, env, url, held);
  } catch (error) {
    if (error instanceof ClientDisconnected) return clientGone(request, url, error);
    // A request refused for room before its body was read: the body is read away before the answer.
    if (error instanceof Busy) await discardBody(request, Number(env.MAX_BODY_BYTES));
    return failure(error);
  } finally {
    held.settle();
  }
}

// The HTTP answer to `request`; `ctx` keeps the request alive until its memory reservations are released.
export async function serve(request: Request, env: Env, ctx?: ExecutionContext): Promise<Response> {
  const response = withCors(request, env, await route(request, env, ctx));
  if (request.method !== "HEAD") return response;
  // HEAD: every answer's status and headers (the GET answer, a 401, 404 or 405) without its body.
  await response.body?.cancel();
  return new Response(null, response);
}
