// How numbers, times and values read in the viewer.

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

// "12.50" → "12.5", "3.00" → "3", "250" stays.
const trimZeros = (text) => (text.includes(".") ? text.replace(/\.?0+$/, "") : text);

/** Seconds as 850µs, 12.3ms, 1.24s, 3m 05s. */
export function duration(seconds) {
  if (!isNumber(seconds)) return "—";
  if (seconds === 0) return "0";
  if (seconds < 0.001) return `${Math.round(seconds * 1e6)}µs`;
  if (seconds < 1) return `${trimZeros((seconds * 1000).toPrecision(3))}ms`;
  if (seconds < 60) return `${seconds.toFixed(2)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m ${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
}

/** A token count with thousands separators; "—" when unknown. */
export function tokens(count) {
  return isNumber(count) ? count.toLocaleString("en-US") : "—";
}

/** A count, shortened past ten thousand (12.3k, 4.5M). */
export function compact(count) {
  if (!isNumber(count)) return "—";
  return count.toLocaleString("en-US", {
    notation: count >= 10000 ? "compact" : "standard",
    maximumFractionDigits: 1,
  });
}

/** US dollars, with enough digits for a fraction of a cent. */
export function cost(amount) {
  if (!isNumber(amount)) return "—";
  if (amount === 0) return "$0";
  if (amount >= 1) return `$${amount.toFixed(2)}`;
  return `$${trimZeros(amount.toPrecision(3))}`;
}

/** A score or mean: up to three decimals. */
export function score(value) {
  if (!isNumber(value)) return "—";
  return String(Math.round(value * 1000) / 1000);
}

/** A local date and time, to the second: 2025-01-31 14:05:09. */
export function dateTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const pad = (n) => String(n).padStart(2, "0");
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** How long ago: "just now", "5m ago", "3h ago", "2d ago"; the date past a week. */
export function ago(iso, now = Date.now()) {
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) return "—";
  const seconds = Math.max(0, (now - then) / 1000);
  if (seconds < 10) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  if (seconds < 7 * 86400) return `${Math.floor(seconds / 86400)}d ago`;
  return dateTime(iso).slice(0, 10);
}

/**
 * Microseconds since the epoch of an ISO timestamp, keeping the microseconds that Date drops
 * (spans of a trace are often microseconds apart).
 */
export function isoMicros(iso) {
  if (!iso) return null;
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(iso);
  if (!match) return null;
  const whole = Date.parse(match[1] + (match[3] || "Z"));
  if (Number.isNaN(whole)) return null;
  const fraction = Number((match[2] ?? "").padEnd(6, "0").slice(0, 6));
  return whole * 1000 + fraction;
}

/** A value on one line, clipped: for table cells showing inputs or outputs. */
export function preview(value, max = 120) {
  if (value === null || value === undefined) return "—";
  let text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) text = String(value);
  text = text.replace(/\s+/g, " ");
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
