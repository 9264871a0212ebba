// Bindings only the tests have (vitest.config.mts): the second Worker that calls edgevit over RPC.
declare namespace Cloudflare {
  interface Env {
    CALLER: Fetcher;
    HUB: Fetcher; // the local hub's controls (test/tools/hub-service.ts)
  }
}
