/**
 * `tasker-worker` (`npx tasker-worker ./dist/handlers.js`): runs a
 * TypeScript worker serving the handlers the given modules register.
 *
 * ```
 * tasker-worker ./dist/handlers.js [more.js] [--concurrency 8] [--namespace payments]
 *               [--template-path config/tasks] [--environment test] [--include-builtins]
 * ```
 *
 * Configuration comes from Tasker's TOML and environment like every Tasker
 * process (`TASKER_ENV`, `DATABASE_URL`, `TASKER_TEMPLATE_PATH`, …); flags
 * win over it. SIGTERM or SIGINT stops the worker after running handlers
 * finish; a second one stops it at once.
 * @module
 */

import * as path from "node:path";
import { parseArgs } from "node:util";

import { WorkerError } from "./errors";
import { Worker } from "./worker";

/** Runs the command line; resolves the exit code. */
export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        concurrency: { type: "string", short: "c" },
        namespace: { type: "string", short: "n", multiple: true },
        "template-path": { type: "string", short: "t", multiple: true },
        environment: { type: "string", short: "e" },
        "config-dir": { type: "string" },
        "include-builtins": { type: "boolean" },
      },
    });
  } catch (err) {
    console.error(`tasker-worker: ${(err as Error).message}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (positionals.length === 0) {
    console.error("usage: tasker-worker MODULE.js [MODULE.js …] [--concurrency N] [--namespace NS] …");
    return 2;
  }
  for (const module of positionals) {
    try {
      require(path.resolve(module)); // eslint-disable-line @typescript-eslint/no-require-imports
    } catch (err) {
      console.error(`tasker-worker: cannot load ${module}: ${(err as Error).message}`);
      return 2;
    }
  }
  const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
  if (concurrency !== undefined && !Number.isInteger(concurrency)) {
    console.error(`tasker-worker: --concurrency must be an integer, not ${values.concurrency}`);
    return 2;
  }
  const worker = new Worker({
    concurrency,
    namespaces: values.namespace,
    templatePaths: values["template-path"],
    environment: values.environment,
    configDir: values["config-dir"],
    includeBuiltins: values["include-builtins"] ?? false,
  });
  try {
    await worker.run();
  } catch (err) {
    if (err instanceof WorkerError) {
      console.error(`tasker-worker: ${err.message}`);
      return 1;
    }
    throw err;
  }
  console.error("tasker-worker: worker stopped");
  return 0;
}
