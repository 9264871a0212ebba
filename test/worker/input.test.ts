// What a failing stream becomes depends on whose stream it is: worker/input.ts leaves the mapping to the
// caller. A request body that fails is the client going away (access.test.ts checks the 499); an RPC
// caller's stream that fails is a refusal of that caller's input; an R2 body that fails is an error the
// queue retries (queue.test.ts).

import { expect, test } from "vitest";
import { EdgevitError } from "../../core/errors.ts";
import { ClientDisconnected, readBounded, readInput } from "../../worker/input.ts";

// Sends `sent` bytes, then fails as a reset connection does.
function failing(sent: number): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream({
    pull(controller) {
      if (done) return controller.error(new Error("Network connection lost."));
      controller.enqueue(new Uint8Array(sent));
      done = true;
    },
  });
}

test("readBounded hands the bytes read and the cause to the caller's mapping", async () => {
  let seen: [number, unknown] | undefined;
  const mapped = new Error("mapped");
  const read = readBounded(failing(300), 1000, (received, cause) => {
    seen = [received, cause];
    return mapped;
  });
  await expect(read).rejects.toBe(mapped);
  expect(seen![0]).toBe(300);
  expect((seen![1] as Error).message).toBe("Network connection lost.");
});

test("an RPC caller's failing stream is bad_parameter, never ClientDisconnected", async () => {
  const error = await readInput(failing(120), 1000).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(EdgevitError);
  expect(error).not.toBeInstanceOf(ClientDisconnected);
  expect((error as EdgevitError).code).toBe("bad_parameter");
  expect((error as EdgevitError).message).toBe("the image stream failed after 120 bytes");
});
