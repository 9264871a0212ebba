#!/usr/bin/env node
// Launcher: Node 22 runs the TypeScript CLI directly (type stripping).
import { main } from "../cli/main.ts";

process.exitCode = await main(process.argv.slice(2));
