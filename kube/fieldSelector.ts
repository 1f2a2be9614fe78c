// Kubernetes field selectors (apimachinery pkg/fields ParseSelector): terms split on unescaped commas,
// operators `=`, `==` (printed `=`), `!=`, backslash escapes for `\` `,` `=`. Pure, Node built-ins only.

export interface FieldTerm {
  readonly field: string;
  readonly operator: "=" | "!=";
  /** Unescaped value. */
  readonly value: string;
}

export class FieldSelectorParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FieldSelectorParseError";
  }
}

/** fields.EscapeValue */
export function escapeFieldValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/,/g, "\\,").replace(/=/g, "\\=");
}

/** fields.UnescapeValue: only `\\`, `\,`, `\=` are escapes; a bare `,` or `=` in a value is an error. */
export function unescapeFieldValue(value: string): string {
  if (!/[\\,=]/.test(value)) return value;
  let out = "";
  let inSlash = false;
  for (const c of value) {
    if (inSlash) {
      if (c === "\\" || c === "," || c === "=") out += c;
      else throw new FieldSelectorParseError(`invalid field selector: invalid escape sequence: \\${c}`);
      inSlash = false;
      continue;
    }
    if (c === "\\") inSlash = true;
    else if (c === "," || c === "=")
      throw new FieldSelectorParseError(`invalid field selector: unescaped character: ${c}`);
    else out += c;
  }
  if (inSlash) throw new FieldSelectorParseError("invalid field selector: invalid escape sequence: \\");
  return out;
}

/** Splits on commas not preceded by an escaping backslash. */
export function splitFieldTerms(selector: string): string[] {
  if (selector.length === 0) return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (inSlash) inSlash = false;
    else if (c === "\\") inSlash = true;
    else if (c === ",") {
      terms.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(selector.slice(start));
  return terms;
}

const TERM_OPERATORS = ["!=", "==", "="] as const;

/** The first position where an operator starts decides the split; at one position `!=` and `==` win over `=`. */
export function splitFieldTerm(term: string): { lhs: string; op: string; rhs: string } | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of TERM_OPERATORS) {
      if (term.startsWith(op, i)) return { lhs: term.slice(0, i), op, rhs: term.slice(i + op.length) };
    }
  }
  return undefined;
}

export class FieldSelector {
  constructor(readonly terms: readonly FieldTerm[]) {}

  isEmpty(): boolean {
    return this.terms.length === 0;
  }

  /** A missing field reads as "" (fields.Set.Get). */
  matches(fields: Readonly<Record<string, string>>): boolean {
    for (const t of this.terms) {
      const actual = fields[t.field] ?? "";
      if (t.operator === "=" ? actual !== t.value : actual === t.value) return false;
    }
    return true;
  }

  toString(): string {
    return this.terms.map((t) => `${t.field}${t.operator}${escapeFieldValue(t.value)}`).join(",");
  }

  /** The value a field must equal, when one `=` term pins it. */
  requiresExactMatch(field: string): string | undefined {
    for (const t of this.terms) if (t.field === field && t.operator === "=") return t.value;
    return undefined;
  }
}

/** fields.ParseSelector. Throws FieldSelectorParseError with the reference message. */
export function parseFieldSelector(selector: string): FieldSelector {
  const parts = splitFieldTerms(selector).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const terms: FieldTerm[] = [];
  for (const part of parts) {
    if (part === "") continue;
    const split = splitFieldTerm(part);
    if (!split)
      throw new FieldSelectorParseError(`invalid selector: '${selector}'; can't understand '${part}'`);
    const value = unescapeFieldValue(split.rhs);
    terms.push({ field: split.lhs, operator: split.op === "!=" ? "!=" : "=", value });
  }
  return new FieldSelector(terms);
}
