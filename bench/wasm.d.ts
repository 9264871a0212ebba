// bench/kernels-worker.ts runs in workerd, where wrangler turns a .wasm import into a compiled module.
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
