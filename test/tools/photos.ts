// The phone-sized uploads of test/tools/phone_photos.py, served to the workerd tests as the PHOTOS service
// binding (vitest.config.mts): this function runs in Node, generates the files into .cache/photos once
// (Pillow, through Debian's /usr/bin/python3), then answers GET /<name> with their bytes.

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";

const root = new URL("../../", import.meta.url).pathname;
const dir = `${root}.cache/photos/`;
let generated: Promise<unknown> | undefined;

export async function photosService(request: Request): Promise<Response> {
  generated ??= existsSync(`${dir}done`)
    ? Promise.resolve()
    : promisify(execFile)("/usr/bin/python3", [`${root}test/tools/phone_photos.py`, dir]);
  await generated;
  const name = new URL(request.url).pathname.slice(1);
  if (!/^[\w-]+\.(jpg|png)$/.test(name) || !existsSync(dir + name))
    return new Response("no such photo", { status: 404 });
  return new Response(await readFile(dir + name));
}
