// The one clock. Tests move it with setClock(); production reads Date.now().
let offsetMs = 0;

export const now = (): number => Date.now() + offsetMs;

/** Shifts every reading of now() by `ms` (tests only: retention, grace periods, 5-day disabling). */
export function advanceClock(ms: number): void {
  offsetMs += ms;
}

export function resetClock(): void {
  offsetMs = 0;
}

/** The API's timestamps: ISO-8601 UTC with milliseconds; null stays null. */
export function isoTime(ms: number): string;
export function isoTime(ms: number | null): string | null;
export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** Flagsmith's timestamp form: ISO-8601 UTC with microseconds and Z. */
export function isoMicro(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Normalises any accepted ISO-8601 date to Flagsmith's microsecond Z form, keeping given
 * microseconds (Date only keeps milliseconds). Returns null for anything unparseable.
 */
export function normaliseTimestamp(input: string): string | null {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/i.exec(input);
  if (!m) return null;
  const [, date, time, frac = "", zone = "Z"] = m;
  const local = `${date}T${time.length === 5 ? `${time}:00` : time}`;
  // Date.parse rolls 2021-02-30 over to 2 March and 24:00 to the next day; such dates do not exist.
  const asGiven = Date.parse(`${local}Z`);
  if (Number.isNaN(asGiven) || new Date(asGiven).toISOString().slice(0, 19) !== local) return null;
  const parsed = Date.parse(`${local}${zone.toUpperCase()}`);
  if (Number.isNaN(parsed)) return null;
  const micros = (frac + "000000").slice(0, 6);
  return new Date(parsed).toISOString().replace(/\.\d{3}Z$/, `.${micros}Z`);
}
