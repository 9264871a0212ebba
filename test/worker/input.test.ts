// What a failing stream becomes depends on whose stream it is: worker/input.ts gives each door its mapping
// and the decoder's source (core/image/bytes.ts) applies it to the bytes read so far. A request body that
// fails is the client going away (access.test.ts checks the 499); an RPC caller's stream that fails is a
// refusal of that caller's input; an R2 body that fails is an error the queue retries (queue.test.ts).

import { expect, test } from "vitest";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import { EdgevitError } from "../../core/errors.ts";
import { ByteSource } from "../../core/image/bytes.ts";
import { inspectImage } from "../../core/pipeline.ts";
import { callerStreamFailed, ClientDisconnected, clientDisconnected } from "../../worker/input.ts";

// Sends the first `sent` bytes of a JPEG, then fails as a reset connection does.
function failing(sent: number): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream({
    pull(controller) {
      if (done) return controller.error(new Error("Network connection lost."));
      controller.enqueue(new Uint8Array(cat.slice(0, sent)));
      done = true;
    },
  });
}

const inspect = (stream: ReadableStream<Uint8Array>, failed: typeof clientDisconnected) =>
  inspectImage(ByteSource.from(stream, { maxBytes: 1 << 20, failed }), { maxPixels: 1 << 24 }).catch((e: unknown) => e);

test("a request body that fails is the client going away, with the bytes read before it and the cause", async () => {
  const error = await inspect(failing(300), clientDisconnected);
  expect(error).toBeInstanceOf(ClientDisconnected);
  expect((error as ClientDisconnected).received).toBe(300);
  expect(((error as ClientDisconnected).cause as Error).message).toBe("Network connection lost.");
});

test("an RPC caller's failing stream is bad_parameter, never ClientDisconnected", async () => {
  const error = await inspect(failing(120), callerStreamFailed);
  expect(error).toBeInstanceOf(EdgevitError);
  expect(error).not.toBeInstanceOf(ClientDisconnected);
  expect((error as EdgevitError).code).toBe("bad_parameter");
  expect((error as EdgevitError).message).toBe("the image stream failed after 120 bytes");
});
