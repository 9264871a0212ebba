// The Worker's entry points: HTTP (router.ts), the queue consumer (queue.ts) and the RPC entrypoint
// (rpc.ts).

import { consume } from "./queue.ts";
import { serve } from "./router.ts";

export { Edgevit, EdgevitText } from "./rpc.ts";

export default {
  fetch(request, env, ctx): Promise<Response> {
    return serve(request, env, ctx);
  },
  async queue(batch, env, _ctx): Promise<void> {
    await consume(batch, env);
  },
} satisfies ExportedHandler<Env>;
