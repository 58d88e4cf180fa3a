/**
 * The TypeScript step of `workers/tests/templates/polyglot.yaml` (one task whose steps run
 * in Rust, Python, Ruby and TypeScript): triples its parent's `value` and
 * adds `"typescript"` to the trail of languages the task went through.
 *
 * The step names `pool: typescript`, so only a worker with this handler
 * takes it.
 * @module
 */

import { handle, PermanentError } from "../ts";

handle("polyglot::typescript_triple", async (ctx) => {
  const [[parent, result]] = ctx.parentResults() as Array<[string, { value?: unknown; trail?: string[] }]>;
  if (typeof result?.value !== "number" || !Number.isSafeInteger(result.value)) {
    throw new PermanentError(`parent \`${parent}\` did not return an integer value`);
  }
  return {
    value: result.value * 3,
    trail: [...(result.trail ?? ["rust"]), "typescript"],
    runtime: `Node.js ${process.version}`,
  };
});
