// The failure codes the engine sends (`floe_core::ErrorCode`, as text); a Rust test
// (floe-api `the_ui_knows_every_code_and_no_other`) checks this list against it.
export const ERROR_CODES = [
  "usage",
  "bad_source",
  "schema_drift",
  "record_order",
  "changed_since_ingest",
  "repository",
  "conflict",
  "storage",
  "internal",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** A code from the engine, or "internal" for anything it does not know. */
export function asErrorCode(code: string | undefined): ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(code ?? "") ? (code as ErrorCode) : "internal";
}
