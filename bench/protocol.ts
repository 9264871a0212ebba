// Messages between the benchmark (parent) and a system's child process (bench/child.ts).

export type SystemName = "edgevit" | "ort-f32" | "ort-int8";

export type ChildRequest =
  | { type: "run"; pixels: Float32Array } // [channels][imageSize][imageSize]
  | { type: "memory" }
  | { type: "exit" };

export type ChildReply =
  | { type: "ready"; loadMs: number; info: Record<string, string | number> }
  | { type: "result"; ms: number; logits: Float32Array } // [classes], or a tower's embedding
  | { type: "memory"; memory: Record<string, number> };
