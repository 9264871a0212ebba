import { test, expect } from "vitest";
import { env, SELF } from "cloudflare:test";
test("worker", async () => {
  await env.MODELS.put("x", "hello");
  expect(await (await env.MODELS.get("x"))!.text()).toBe("hello");
  expect(await (await SELF.fetch("http://x/")).text()).toBe("ok");
});
