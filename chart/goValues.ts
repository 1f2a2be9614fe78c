// How Helm's Go templates see and print chart values, for the few places where the chart prints a value
// into a string (command-line flags, env values, selector parts). Node built-ins only.

/** A JSON-like value as it arrives from values files or from the component's inputs. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Go template truthiness (`if`, `with`, `default`): false, 0, "", nil and empty lists or maps are false.
 * `default X` and `| default list` in the chart all go through this rule (so 0 and "" count as unset).
 */
export function truthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === "") return false;
  if (Array.isArray(value)) return value.length > 0;
  if (isMap(value)) return Object.keys(value).length > 0;
  return true;
}

/**
 * Go's `%v` for a float64, which is what every number read from a values file (or from Pulumi's JSON) is
 * in Helm: shortest digits, and exponent form once the decimal exponent is below -4 or at least 6.
 * So `parallelism: 1000000` renders `--parallelism=1e+06`, exactly as Helm prints it.
 */
export function goFloat(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (!Number.isFinite(n)) return n > 0 ? "+Inf" : "-Inf";
  if (n === 0) return Object.is(n, -0) ? "-0" : "0";
  const [mantissa, expText] = n.toExponential().split("e");
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) {
    const sign = exp < 0 ? "-" : "+";
    const digits = String(Math.abs(exp)).padStart(2, "0");
    return `${mantissa}e${sign}${digits}`;
  }
  // Within [-4, 6) JavaScript's own shortest form is the plain decimal Go would print.
  return String(n);
}

/** What `{{ value }}` prints (Helm turns Go's `<no value>` for nil into ""). */
export function goPrint(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number") return goFloat(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (Array.isArray(value)) return `[${value.map(goPrint).join(" ")}]`;
  if (isMap(value)) {
    const parts = Object.keys(value)
      .sort()
      .map((key) => `${key}:${goPrint(value[key])}`);
    return `map[${parts.join(" ")}]`;
  }
  return String(value);
}

/**
 * What `printf "%s" value` prints: strings as they are, anything else as Go's bad-verb marker. The chart's
 * nodeLabelSelector formats equality values this way, so a non-string value gives `a=%!s(bool=true)`
 * (kata-deploy-chart.md §3.4, checked by rendering).
 */
export function goSprintfS(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return `%!s(bool=${value})`;
  if (typeof value === "number") {
    // Values given with --set are int64, values from files (and from Pulumi's JSON) are float64; the
    // chart spec records the int64 form, so integers print that way and fractions as float64.
    return Number.isInteger(value) ? `%!s(int64=${value})` : `%!s(float64=${goFloat(value)})`;
  }
  if (value === undefined || value === null) return "%!s(<nil>)";
  return goPrint(value);
}

/** Deep copy of JSON-like data (values are plain data; functions and class instances are not expected). */
export function cloneJson<T>(value: T): T {
  if (Array.isArray(value)) return value.map((item) => cloneJson(item)) as T;
  if (isMap(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = cloneJson(item);
    return out as T;
  }
  return value;
}
