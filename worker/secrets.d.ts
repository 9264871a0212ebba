// Secrets the Worker reads when they are set (`wrangler secret put NAME`); `wrangler types` writes only
// the vars and bindings of wrangler.toml into env.d.ts.
interface Env {
  API_TOKEN?: string; // worker/auth.ts: when set, the API needs `Authorization: Bearer <API_TOKEN>`
  HF_TOKEN?: string; // worker/imports.ts: a hub token, for gated and private repositories
}
