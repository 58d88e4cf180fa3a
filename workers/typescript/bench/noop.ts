/**
 * The no-op handler `tasker-bench compare` runs in the TypeScript worker:
 * the same work as Rust's `bench::noop` (nothing), so the difference
 * between the two runs is what the TypeScript worker costs per step.
 *
 * ```
 * (cd workers/typescript && npx tsc -p .)
 * cargo run --release -p tasker-bench -- compare \
 *     --worker "node workers/typescript/bin/tasker-worker.js workers/typescript/dist/bench/noop.js"
 * ```
 */

import { handle } from "../ts";

/** Does nothing, like Rust's `tasker::noop`. */
handle("bench::noop", () => ({}));
