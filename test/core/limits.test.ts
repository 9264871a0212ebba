// The Worker's limits (wrangler.toml [vars]) are the core's defaults, which the CLI uses: both accept and
// refuse the same uploads.

import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IMAGE_PIXELS } from "../../core/limits.ts";
import { CLI_LIMITS } from "../../cli/node-engine.ts";

const toml = readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8");
const vars = toml.slice(toml.indexOf("[vars]"));
const number = (name: string) => Number(new RegExp(`^${name}\\s*=\\s*(\\d+)`, "m").exec(vars)?.[1]);

test("wrangler.toml's MAX_BODY_BYTES and MAX_IMAGE_PIXELS equal core/limits.ts", () => {
  expect(number("MAX_BODY_BYTES")).toBe(DEFAULT_MAX_BODY_BYTES);
  expect(number("MAX_IMAGE_PIXELS")).toBe(DEFAULT_MAX_IMAGE_PIXELS);
  expect(CLI_LIMITS.maxPixels).toBe(DEFAULT_MAX_IMAGE_PIXELS);
});

test("the defaults take a 16 MiB body and a 24 MP photo", () => {
  expect(DEFAULT_MAX_BODY_BYTES).toBeGreaterThanOrEqual(16 * 2 ** 20);
  expect(DEFAULT_MAX_IMAGE_PIXELS).toBeGreaterThanOrEqual(6000 * 4000);
});
