/**
 * The sample order of the ecommerce example, shared by its unit tests and
 * its end-to-end tests: two items, 2 × 1999 + 1250 cents.
 * @module
 */

/** The order, paid with `token`, with `changes` over its fields. */
export function sampleOrder(token = "tok_ok", changes: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    customer: { id: 7, email: "ada@example.com" },
    items: [
      { sku: "BOOK-42", quantity: 2, unit_price_cents: 1999 },
      { sku: "MUG-7", quantity: 1, unit_price_cents: 1250 },
    ],
    payment: { method: "card", token },
    shipping: { address: "1 Infinite Loop", method: "express" },
    ...changes,
  };
}
