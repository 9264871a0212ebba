import { expect, test } from "vitest";

// wrangler and the type-stripping TypeScript the scripts rely on need Node >= 22.18: the `node` package in
// devDependencies provides it, and npm scripts put it first on PATH.
test("tests run under the Node that package.json pins", () => {
  const [major, minor] = process.versions.node.split(".").map(Number);
  expect(major).toBe(22);
  expect(minor).toBeGreaterThanOrEqual(18);
});
