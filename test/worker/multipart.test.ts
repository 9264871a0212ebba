// The multipart/form-data reader (worker/multipart.ts) against workerd's own FormData parser: the `image`
// part's bytes are the same whatever the chunks the body arrives in (cut at every position of a small form,
// at random in a large one), and the refusals are those of a form the handler cannot use.

import { expect, test } from "vitest";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import { EdgevitError } from "../../core/errors.ts";
import type { ByteReader } from "../../core/image/bytes.ts";
import { formImage } from "../../worker/multipart.ts";

const encode = (s: string) => new TextEncoder().encode(s);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// The body's bytes in chunks ending at `cuts`.
function chunked(body: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
  const ends = [...cuts.filter((c) => c > 0 && c < body.length).sort((a, b) => a - b), body.length];
  let i = 0;
  let from = 0;
  return new ReadableStream(
    {
      pull(controller) {
        if (i === ends.length) return controller.close();
        controller.enqueue(body.slice(from, ends[i]));
        from = ends[i++];
      },
    },
    { highWaterMark: 0 },
  );
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const failedRead = (received: number) => new Error(`failed after ${received}`);

// What workerd's FormData makes of the same body: the reference.
async function reference(body: Uint8Array, type: string): Promise<Uint8Array> {
  const form = await new Response(body, { headers: { "content-type": type } }).formData();
  return new Uint8Array(await (form.get("image") as File).arrayBuffer());
}

// The part read in place through its reader, `viewBytes` at most a read, into one buffer: every read
// answers a view of that very buffer (nothing transferred, nothing allocated for the bytes).
async function readInPlace(reader: ByteReader, viewBytes = 1000): Promise<Uint8Array> {
  const memory = new ArrayBuffer(viewBytes);
  const pieces: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read(new Uint8Array(memory, 0, viewBytes));
    expect(memory.byteLength).toBe(viewBytes); // not detached
    if (done) return concat(...pieces);
    expect(value.buffer).toBe(memory);
    expect(value.byteOffset).toBe(0);
    pieces.push(value.slice());
  }
}

// The image part's type and bytes, read both ways (the decoder's window reads the reader; the stream is
// the same bytes for other callers): they must agree.
async function image(body: Uint8Array, type: string, cuts: number[] = [], limit = 1 << 24) {
  const part = await formImage(chunked(body, cuts), type, limit, failedRead);
  const bytes = await readInPlace(part.reader, 1 + (cuts.length % 700));
  const streamed = await formImage(chunked(body, cuts), type, limit, failedRead);
  expect(await readAll(streamed.stream)).toEqual(bytes);
  return { type: part.type, bytes };
}

// Bytes that look like delimiters without being one: a line break and dashes, the boundary's start.
const tricky = concat(encode("\r\n--bound\r\n--boundar\r\n-"), new Uint8Array(cat).subarray(0, 300), encode("\r\n"));

function form(boundary: string, fields: [string, string | Uint8Array, string?][], preamble = ""): Uint8Array {
  const parts: Uint8Array[] = [encode(preamble)];
  for (const [name, value, filename] of fields) {
    const file = typeof value !== "string";
    parts.push(
      encode(
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${file ? `; filename="${filename ?? "f.jpg"}"` : ""}\r\n` +
          `${file ? "Content-Type: image/jpeg\r\n" : ""}\r\n`,
      ),
      file ? value : encode(value),
      encode("\r\n"),
    );
  }
  parts.push(encode(`--${boundary}--\r\n`));
  return concat(...parts);
}

test("the image part of a small form, cut at every position, is workerd's FormData's image", async () => {
  const boundary = "boundary";
  const type = `multipart/form-data; boundary=${boundary}`;
  const body = form(boundary, [
    ["note", "a cat\r\n--not the boundary"],
    ["image", tricky],
    ["after", "x"],
  ]);
  const want = await reference(body, type);
  expect(want).toEqual(tricky);
  for (let cut = 1; cut < body.length; cut++) {
    const got = await image(body, type, [cut]);
    expect(got.bytes, `cut at ${cut}`).toEqual(want);
    expect(got.type).toBe("image/jpeg");
  }
  // Every byte its own chunk.
  expect((await image(body, type, Array.from(body.keys()))).bytes).toEqual(want);
});

test("a browser's form (FormData's own encoding), with a preamble-free body, in random chunks", async () => {
  const data = new FormData();
  data.append("caption", "x".repeat(5000));
  data.append("image", new File([cat], "cat.jpg", { type: "image/jpeg" }));
  const request = new Request("http://x/", { method: "POST", body: data });
  const type = request.headers.get("content-type")!;
  const body = new Uint8Array(await request.arrayBuffer());
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let round = 0; round < 20; round++) {
    const cuts = Array.from({ length: 30 }, () => Math.floor(random() * body.length));
    expect((await image(body, type, cuts)).bytes).toEqual(new Uint8Array(cat));
  }
});

test("a preamble, a quoted boundary and an epilogue", async () => {
  const boundary = "a b:c";
  const body = concat(
    encode(`preamble text\r\n--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="c.jpg"\r\n\r\n`),
    tricky,
    encode(`\r\n--${boundary}--\r\nepilogue`),
  );
  const type = `multipart/form-data; boundary="${boundary}"`;
  expect((await image(body, type)).bytes).toEqual(await reference(body, type));
});

async function refusal(body: Uint8Array, type: string, limit?: number): Promise<EdgevitError> {
  const error = await image(body, type, [7, 100], limit).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(EdgevitError);
  return error as EdgevitError;
}

test("refusals: no image field, a text one, no boundary, a body that is no form or ends inside the image", async () => {
  const b = "boundary";
  const type = `multipart/form-data; boundary=${b}`;
  expect((await refusal(form(b, [["picture", tricky]]), type)).message).toBe('the multipart form has no "image" field');
  expect((await refusal(form(b, [["image", "a cat"]]), type)).message).toBe(
    'the "image" field must be a file, not text',
  );
  const unparsable = "the multipart/form-data body could not be parsed";
  expect((await refusal(form(b, [["image", tricky]]), "multipart/form-data")).message).toBe(unparsable);
  expect((await refusal(new Uint8Array(cat), type)).message).toBe(unparsable);
  const cut = form(b, [["image", tricky]]).subarray(0, 200);
  const truncated = await formImage(chunked(cut, []), type, 1 << 20, failedRead);
  const error = await readAll(truncated.stream).catch((e: unknown) => e);
  expect((error as EdgevitError).message).toBe(unparsable);
  const headers = encode(`--${b}\r\nContent-Disposition: form-data; name="image"; x="${"y".repeat(20000)}"\r\n\r\n`);
  expect((await refusal(headers, type)).message).toBe(unparsable);
});

test("the limit counts the whole body as it is read, fields before the image included", async () => {
  const body = form("boundary", [
    ["note", "n".repeat(4000)],
    ["image", tricky],
  ]);
  const type = "multipart/form-data; boundary=boundary";
  const error = await refusal(body, type, 4000);
  expect(error.code).toBe("payload_too_large");
  expect(error.message).toBe("the body is larger than the limit of 4000 bytes");
  // Within the limit, the image's own bytes are counted too: they are read while the decoder reads them.
  const part = await formImage(chunked(body, [4300]), type, body.length - 10, failedRead);
  expect(((await readAll(part.stream).catch((e: unknown) => e)) as EdgevitError).code).toBe("payload_too_large");
});

test("a body that fails is the caller's mapping of the bytes read before it", async () => {
  const body = form("boundary", [["image", tricky]]);
  let sent = false;
  const failing = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) return controller.error(new Error("Network connection lost."));
      controller.enqueue(body.slice(0, 150));
      sent = true;
    },
  });
  const part = await formImage(failing, "multipart/form-data; boundary=boundary", 1 << 20, failedRead);
  const error = await readAll(part.stream).catch((e: unknown) => e);
  expect((error as Error).message).toBe("failed after 150");
});
