// RFC 8785 JSON Canonicalization Scheme (JCS): the one serialisation an audit log leaf has.
// Object members sorted by their names' UTF-16 code units, no whitespace, strings and numbers as
// ECMAScript's JSON.stringify writes them (RFC 8785 sections 3.2.2 and 3.2.3 define exactly that).

export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
    case "string":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError("JCS has no form for NaN or Infinity");
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
      const record = value as Record<string, unknown>;
      // Array.prototype.sort compares strings by UTF-16 code units, as RFC 8785 3.2.3 asks.
      const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(",")}}`;
    }
    default:
      throw new TypeError(`JCS has no form for ${typeof value}`);
  }
}
