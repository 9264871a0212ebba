import { defineConfig } from "vitest/config";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { photosService } from "./test/tools/photos.ts";
import { HUB_ENDPOINT, HUB_TOKEN, hubControl, hubFetch } from "./test/tools/hub-service.ts";

// The plugin renames the Worker under test to its runner, "vitest-plugin-runner-<project name>": an
// auxiliary Worker binds the Worker's named entrypoints through that name.
const RUNNER = "vitest-plugin-runner-workers";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          include: ["test/**/*.test.ts"],
          exclude: ["test/worker/**"],
          setupFiles: ["test/decode-kernels.setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // Phone-sized photos made at test time in Node (test/tools/photos.ts), fetched by photos.test.ts.
              // CALLER: a second Worker calling edgevit over RPC, as a pipeline would (test/worker/rpc.test.ts).
              // TEXT: the text Worker's entrypoint, here the Worker under test itself, as wrangler.text.toml deploys
              // it beside the main one (test/worker/text.test.ts).
              // HUB: the local hub's controls and reference bundles (test/tools/hub-service.ts); every fetch the
              // Worker itself makes goes to the local hub (imports from HF_ENDPOINT, test/worker/imports.test.ts).
              serviceBindings: {
                CALLER: "edgevit-caller",
                PHOTOS: photosService,
                TEXT: { name: RUNNER, entrypoint: "EdgevitText" },
                HUB: hubControl,
              },
              outboundService: hubFetch,
              bindings: { HF_ENDPOINT: HUB_ENDPOINT, HF_TOKEN: HUB_TOKEN },
              workers: [
                {
                  name: "edgevit-caller",
                  modules: true,
                  scriptPath: "./test/worker/caller/index.js",
                  compatibilityDate: "2026-11-01",
                  serviceBindings: { EDGEVIT: { name: RUNNER, entrypoint: "Edgevit" } },
                },
              ],
            },
          }),
        ],
        test: {
          name: "workers",
          // Without it, with two projects, the plugin resolves the Worker's relative wasm imports against
          // the parent folder ("No such module .../build/engine.wasm").
          root: import.meta.dirname,
          include: ["test/worker/**/*.test.ts"],
          testTimeout: 120_000,
        },
      },
    ],
  },
});
