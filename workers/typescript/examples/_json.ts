/**
 * JSON values read as the Rust examples read them with serde_json, so the
 * TypeScript ports accept and reject the same inputs wherever JavaScript
 * can represent them.
 *
 * Integers: JavaScript numbers are doubles, and the worker parses the step
 * context with `JSON.parse`, so an integer beyond ±(2^53 − 1) has already
 * lost its exact value before a handler sees it. Where Rust checks that a
 * value fits a 64-bit integer, these ports check that it is a *safe*
 * integer, and fail permanently on results outside that range rather than
 * hand dependents a rounded number.
 *
 * {@link int}, {@link uint}, {@link text}, {@link array} and {@link object} read a field in
 * a parser passed to `ctx.contextAs(...)`: a missing key or a mistyped
 * value throws a `TypeError`, which fails the step permanently.
 * @module
 */

/** A JSON object (not an array, not null). */
export type JsonObject = Record<string, unknown>;

/** Whether `value` is a JSON object (not an array, not null). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether `n` is an integer JavaScript represents exactly (the ports' stand-in for `i64`). */
export function isInt(n: unknown): n is number {
  return Number.isSafeInteger(n);
}

/** `value` if it is a safe integer (not a string, not a boolean), as `Value::as_i64`; else `undefined`. */
export function asInt(value: unknown): number | undefined {
  return isInt(value) ? value : undefined;
}

/** `value` if it is a non-negative safe integer, as `Value::as_u64`; else `undefined`. */
export function asUint(value: unknown): number | undefined {
  return isInt(value) && value >= 0 ? value : undefined;
}

/**
 * `value[key]` as serde_json indexes: `null` when `value` is not an object
 * or has no own `key` (never an inherited property such as `constructor`).
 */
export function at(value: unknown, key: string): unknown {
  return isObject(value) && Object.hasOwn(value, key) ? value[key] : null;
}

/** `data[key]`; a non-object or a missing key throws a `TypeError` (`missing 'key'`). */
function field(data: unknown, key: string): unknown {
  if (!isObject(data)) throw new TypeError(`expected an object with \`${key}\``);
  if (!Object.hasOwn(data, key)) throw new TypeError(`missing '${key}'`);
  return data[key];
}

/** Field `key`, a safe integer. */
export function int(data: unknown, key: string): number {
  const value = asInt(field(data, key));
  if (value === undefined) throw new TypeError(`\`${key}\` must be an integer`);
  return value;
}

/** Field `key`, a non-negative safe integer. */
export function uint(data: unknown, key: string): number {
  const value = asUint(field(data, key));
  if (value === undefined) throw new TypeError(`\`${key}\` must be a non-negative integer`);
  return value;
}

/** Field `key`, a string. */
export function text(data: unknown, key: string): string {
  const value = field(data, key);
  if (typeof value !== "string") throw new TypeError(`\`${key}\` must be a string`);
  return value;
}

/** Field `key`, an array. */
export function array(data: unknown, key: string): unknown[] {
  const value = field(data, key);
  if (!Array.isArray(value)) throw new TypeError(`\`${key}\` must be an array`);
  return value;
}

/** Field `key`, an object. */
export function object(data: unknown, key: string): JsonObject {
  const value = field(data, key);
  if (!isObject(value)) throw new TypeError(`\`${key}\` must be an object`);
  return value;
}

/** `read(data, key)`, or `null` for a missing or null `key`. */
export function optional<T>(read: (data: unknown, key: string) => T, data: unknown, key: string): T | null {
  return at(data, key) === null ? null : read(data, key);
}
