export declare const MAGIC = "EVIT";
export declare const FORMAT_VERSION = 1;
export declare const PREFIX_BYTES = 16;
export declare const ALIGN = 64;
export declare const MAX_HEADER_BYTES: number;
export type BundleErrorCode = "bad_magic" | "unsupported_version" | "bad_header" | "size_mismatch" | "truncated" | "checksum_mismatch";
export declare class BundleError extends Error {
    readonly code: BundleErrorCode;
    constructor(code: BundleErrorCode, message: string);
}
export interface ModelConfig {
    imageSize: number;
    patchSize: number;
    channels: number;
    dim: number;
    heads: number;
    hidden: number;
    layers: number;
    classes: number;
    eps: number;
    distilled: boolean;
}
export type ResizeSize = {
    height: number;
    width: number;
} | {
    shortestEdge: number;
};
export interface Preprocessing {
    doResize: boolean;
    size: ResizeSize;
    resample: number;
    doCenterCrop: boolean;
    cropSize: {
        height: number;
        width: number;
    } | null;
    doRescale: boolean;
    rescaleFactor: number;
    doNormalize: boolean;
    imageMean: number[];
    imageStd: number[];
}
export interface SourceFile {
    bytes: number;
    crc32: string;
}
export interface BundleSource {
    layout: string;
    checkpoint: string;
    files: Record<string, SourceFile>;
    dtype: string;
    converter: string;
    convertedAt: string;
}
export interface TensorEntry {
    name: string;
    offset: number;
    bytes: number;
}
export interface BundleHeader {
    format: "edgevit";
    version: number;
    name: string;
    config: ModelConfig;
    preprocessing: Preprocessing;
    labels: string[];
    quantization: typeof QUANTIZATION;
    source: BundleSource;
    payload: {
        length: number;
        crc32: string;
    };
    tensors: TensorEntry[];
}
export interface BundleParts {
    name: string;
    config: ModelConfig;
    preprocessing: Preprocessing;
    labels: string[];
    source: BundleSource;
}
export declare const QUANTIZATION: {
    readonly scheme: "w7a8";
    readonly weights: "per-channel symmetric 7-bit, stored q+64";
    readonly activations: "per-token asymmetric int8";
    readonly pack: {
        readonly rows: 4;
        readonly k: 16;
    };
};
export type Crc32 = (data: Uint8Array, value?: number) => number;
export declare const align64: (n: number) => number;
export declare const hex32: (crc: number) => string;
export declare function tokens(config: ModelConfig): number;
export type TensorKind = {
    kind: "f32";
    shape: number[];
} | {
    kind: "linear";
    part: "weight" | "scale" | "wsum" | "bias";
    n: number;
    k: number;
};
export interface LayoutEntry extends TensorEntry {
    source: TensorKind;
}
export interface Layout {
    tensors: LayoutEntry[];
    length: number;
}
export declare function layout(config: ModelConfig): Layout;
export declare function encodeHead(header: BundleHeader): Uint8Array;
export declare class BundleWriter {
    readonly plan: Layout;
    readonly payloadOffset: number;
    private readonly parts;
    private readonly crc32;
    private next;
    private written;
    private crc;
    constructor(parts: BundleParts, crc32: Crc32);
    head(): Uint8Array;
    add(name: string, data: ArrayBufferView): Uint8Array[];
    get done(): boolean;
    finish(): {
        head: Uint8Array;
        header: BundleHeader;
    };
}
export declare function encodeBundle(parts: BundleParts, tensors: Map<string, ArrayBufferView> | Record<string, ArrayBufferView>, crc32: Crc32): Uint8Array;
export type PrefixResult = {
    header: BundleHeader;
    payloadOffset: number;
} | {
    need: number;
};
export declare function parsePrefix(bytes: Uint8Array): PrefixResult;
export declare function validateHeader(json: unknown): BundleHeader;
export declare function describe(c: ModelConfig): string;
export declare function headerTruncated(received: number): BundleError;
export declare function pastPayload(header: BundleHeader): BundleError;
export declare function checkPayload(header: BundleHeader, received: number, crc: number): void;
export declare function readBundle(bytes: Uint8Array, crc32: Crc32): {
    header: BundleHeader;
    payload: Uint8Array;
};
