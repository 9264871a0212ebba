// Node tests decode as the Worker does: with the image decoders' wasm kernels (build/decode.wasm)
// installed. test/core/image/kernels.test.ts compares them with the JavaScript paths.
import { readFileSync } from "node:fs";
import { installDecodeKernels } from "../core/image/kernels.ts";

installDecodeKernels(new WebAssembly.Module(readFileSync(new URL("../build/decode.wasm", import.meta.url))));
