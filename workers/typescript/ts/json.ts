/**
 * Checks that a handler's result is JSON before it crosses to the core.
 * `JSON.stringify` quietly turns `NaN` into `null`, drops `undefined` and
 * functions, and makes a `Map` or `Set` an empty object; the worker refuses
 * them instead (the step fails as `invalid_result`, naming where). Objects
 * with a `toJSON` (a `Date`) are serialised the way JavaScript does.
 */

/** Raised for a value that is not JSON; the message names its path. */
export class NotJson extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "NotJson";
  }
}

/** `value`, checked; throws {@link NotJson}. */
export function checkJson<T>(value: T, path = "result", depth = 0): T {
  if (depth > 128) throw new NotJson(`${path} nests deeper than 128 levels`);
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new NotJson(`${path} is ${value}, which JSON cannot represent`);
    return value;
  }
  if (typeof value !== "object") throw new NotJson(`${path} is a ${typeof value}, which is not JSON`);
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return value;
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkJson(item, `${path}[${i}]`, depth + 1));
    return value;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new NotJson(`${path} is a ${(value as object).constructor?.name ?? "object"}, which is not JSON`);
  }
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    if (item === undefined) throw new NotJson(`${path}.${key} is undefined, which JSON drops`);
    checkJson(item, `${path}.${key}`, depth + 1);
  }
  return value;
}
