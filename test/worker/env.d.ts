// Bindings only the tests have (vitest.config.mts): the second Worker that calls edgevit over RPC.
declare namespace Cloudflare {
  interface Env {
    CALLER: Fetcher;
  }
}
