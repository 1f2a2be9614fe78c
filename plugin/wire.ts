// Values between the provider server of @pulumi/pulumi and the rollout's CRUD. The server hands the provider the
// engine's Struct as plain JSON (Configure accepted secrets, so secrets arrive as signature objects) and turns the
// provider's results back into a Struct, which rejects `undefined`. The rollout's CRUD wants plain values.

/** The engine's secret signature (`@pulumi/pulumi` runtime/rpc specialSigKey / specialSecretSig). */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

function isSecretValue(value: unknown): value is { value: unknown } {
  return !!value && typeof value === "object" && (value as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** The value with every secret wrapper removed, and the top-level keys that held a secret anywhere inside. */
export function unwrapSecrets(props: Record<string, unknown>): {
  plain: Record<string, unknown>;
  secretKeys: Set<string>;
} {
  const secretKeys = new Set<string>();
  const strip = (value: unknown, key: string): unknown => {
    if (isSecretValue(value)) {
      secretKeys.add(key);
      return strip(value.value, key);
    }
    if (Array.isArray(value)) return value.map((v) => strip(v, key));
    if (value && typeof value === "object")
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strip(v, key)]));
    return value;
  };
  const plain: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props ?? {})) plain[k] = strip(v, k);
  return { plain, secretKeys };
}

/** JSON for a protobuf Struct: `undefined` members dropped (as the SDK's serializer does), secrets re-wrapped. */
export function toWire(props: object, secretKeys: Iterable<string>): Record<string, unknown> {
  const clean = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : clean(v)));
    if (value && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = clean(v);
      return out;
    }
    return value;
  };
  const out = clean(props) as Record<string, unknown>;
  for (const k of secretKeys) if (k in out) out[k] = { [SIG_KEY]: SECRET_SIG, value: out[k] };
  return out;
}
