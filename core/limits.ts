// The upload limits, the same for the Worker (wrangler.toml's [vars] repeat these numbers, and a test
// holds them equal) and the CLI. docs/MEMORY.md measures that a ViT-B/16 plus an upload at these limits
// stays inside an isolate's 128 MB: images stream through the decoder and the preprocessor row by row.

// 16 MiB of body: a 24 MP phone JPEG is 5-12 MB, a 24 MP PNG of a photo more.
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
// 24 MiP (e.g. 6000x4000 = 24.0 MP, 6144x4096), checked from the file's header.
export const DEFAULT_MAX_IMAGE_PIXELS = 24 * 1024 * 1024;
