// Program-time only (never imported by the serialized provider): turn a kubeconfig — the component's `kubeconfig`
// argument, else $KUBECONFIG / ~/.kube/config / in-cluster — into the plain ConnectionSpec the provider uses, with
// @kubernetes/client-node's own loader so that merging, contexts and in-cluster rules are the usual ones.
import { existsSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import type { ConnectionSpec } from "./connection";
import { ConnectionResolutionError, ambientSource, specFromKubeConfig } from "./kubeconfigSpec";

export { ConnectionResolutionError };

export interface ResolveOptions {
  /** The component's `kubeconfig` argument: kubeconfig YAML/JSON text, base64 of it, or a file path. */
  kubeconfig?: string;
  /** Context to use instead of the kubeconfig's current-context. */
  context?: string;
}

/** What a kubeconfig argument was recognised as. */
export type KubeconfigArgument =
  | { kind: "document"; text: string }
  | { kind: "base64"; text: string }
  | { kind: "file"; path: string }
  | { kind: "unrecognised"; length: number };

/** A document is JSON, several lines, or starts with `key: value` (YAML). */
function looksLikeDocument(text: string): boolean {
  return text.startsWith("{") || text.includes("\n") || /^[\w-]+:\s/.test(text);
}

// Standard or URL-safe alphabet, padding optional: what `base64 -w0` and CI secret stores produce.
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * Recognises a kubeconfig argument without ever putting it in a message: a document, base64 of a document (the
 * usual CI form), a path to an existing file, or none of these (a token or a mistyped path: refused, and only its
 * length is reported, because the value may be a credential).
 */
export function recogniseKubeconfigArgument(value: string, fileExists = existsSync): KubeconfigArgument {
  const text = value.trim();
  if (looksLikeDocument(text)) return { kind: "document", text };
  if (BASE64.test(text)) {
    const decoded = Buffer.from(text, "base64").toString("utf8").trim();
    if (looksLikeDocument(decoded) && /\b(clusters|apiVersion|kind)\b/.test(decoded))
      return { kind: "base64", text: decoded };
  }
  if (fileExists(text)) return { kind: "file", path: text };
  return { kind: "unrecognised", length: text.length };
}

/** Load the KubeConfig the same way the Kubernetes provider and kubectl would. */
export function loadKubeConfig(opts: ResolveOptions = {}): { kc: KubeConfig; source: string } {
  const kc = new KubeConfig();
  let source: string;
  const text = opts.kubeconfig?.trim();
  if (text) {
    const arg = recogniseKubeconfigArgument(text);
    if (arg.kind === "unrecognised")
      throw new ConnectionResolutionError(
        `kubeconfig argument: a single line of ${arg.length} characters that is neither kubeconfig YAML/JSON, ` +
          `nor base64 of it, nor the path of an existing file (not shown: it may be a credential); ` +
          `give the kubeconfig's content, base64 of it, or the path of a kubeconfig file`,
      );
    // Messages name what the argument was taken for, never its content: it holds credentials. A path that
    // exists is not a secret; the file's content is.
    const [load, what, from] =
      arg.kind === "file"
        ? [() => kc.loadFromFile(arg.path), `cannot read kubeconfig file ${arg.path}`, " (file)"]
        : arg.kind === "base64"
          ? [
              () => kc.loadFromString(arg.text),
              "base64 text that decodes to an invalid kubeconfig document",
              " (base64)",
            ]
          : [() => kc.loadFromString(arg.text), "not a valid kubeconfig document", ""];
    try {
      load();
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
      throw new ConnectionResolutionError(`kubeconfig argument: ${what} (${why})`);
    }
    source = `kubeconfig argument${from}`;
  } else {
    kc.loadFromDefault();
    source = ambientSource(kc);
  }
  if (opts.context) kc.setCurrentContext(opts.context);
  return { kc, source };
}

/** Resolve a ConnectionSpec; every failure names the kubeconfig field and what would be valid. */
export function resolveConnection(opts: ResolveOptions = {}): ConnectionSpec {
  const { kc, source } = loadKubeConfig(opts);
  return specFromKubeConfig(kc, source);
}
