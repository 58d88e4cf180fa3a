/**
 * Every example handler: importing this module registers the handlers of
 * all example workflows (`config/tasks/*.yaml`) in the package's default
 * `registry`, so one worker serves them all:
 *
 * ```
 * npx tasker-worker ./dist/examples/all.js --template-path ../../config/tasks
 * ```
 * @module
 */

// Imported for their side effect (registration), and re-exported so tests
// can call the handlers directly.
import * as approvals from "./approvals";
import * as csvBatch from "./csvBatch";
import * as ecommerce from "./ecommerce";
import * as numbers from "./numbers";
import * as parity from "./parity";

export { approvals, csvBatch, ecommerce, numbers, parity };
