import { test, expect } from "vitest";
test("node", () => { expect(process.version.startsWith("v22")).toBe(true); });
