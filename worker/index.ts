// The Worker's router: path and method to a handler in api.ts; every failure becomes a JSON error.

import { routes } from "./api.ts";
import { EdgevitError } from "../core/errors.ts";
import { ClientDisconnected, clientGone, errorResponse, failure } from "./http.ts";
import { refuse } from "./auth.ts";

export default {
  async fetch(request, env, _ctx): Promise<Response> {
    const url = new URL(request.url);
    const unauthorized = await refuse(request, env, url);
    if (unauthorized) return unauthorized;
    const methods = routes[url.pathname];
    if (!methods) return errorResponse(new EdgevitError("not_found", `no route ${url.pathname}`));
    const handler = methods[request.method];
    if (!handler) {
      const allow = Object.keys(methods).join(", ");
      return errorResponse(
        new EdgevitError("method_not_allowed", `${url.pathname} accepts ${allow}, not ${request.method}`),
        { allow },
      );
    }
    try {
      return await handler(request, env, url);
    } catch (error) {
      if (error instanceof ClientDisconnected) return clientGone(request, url, error);
      return failure(error);
    }
  },
} satisfies ExportedHandler<Env>;
