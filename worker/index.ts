// The Worker's entry points: HTTP (router.ts), the queue consumers (queue.ts for images, imports.ts for
// models from the hub) and the RPC entrypoint (rpc.ts).

import decodeModule from "../build/decode.wasm";
import { installDecodeKernels } from "../core/image/kernels.ts";
import { IMPORT_QUEUE, type ImportMessage, runImports } from "./imports.ts";
import { consume } from "./queue.ts";
import { serve } from "./router.ts";

// The image decoders' wasm kernels, instantiated once per isolate at its first decode.
installDecodeKernels(decodeModule);

export { Edgevit, EdgevitText } from "./rpc.ts";

export default {
  fetch(request, env, ctx): Promise<Response> {
    return serve(request, env, ctx);
  },
  async queue(batch, env, _ctx): Promise<void> {
    if (batch.queue === IMPORT_QUEUE) await runImports(batch as MessageBatch<ImportMessage>, env);
    else await consume(batch, env);
  },
} satisfies ExportedHandler<Env>;
