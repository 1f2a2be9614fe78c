// The plain connection spec the rollout's dynamic provider connects with. Resolved at program time from a kubeconfig
// (rollout/resolveConnection.ts) and handed to the resource as a *secret* input, so the provider itself never loads a
// kubeconfig library. Node built-ins only: the serialized provider imports this file.

/** An exec credential plugin, as in a kubeconfig's `users[].user.exec` (client.authentication.k8s.io). */
export interface ExecCredentialConfig {
  command: string;
  args?: string[];
  env?: { name: string; value: string }[];
  /** `client.authentication.k8s.io/v1` or `v1beta1`; sent back to the plugin in KUBERNETES_EXEC_INFO. */
  apiVersion?: string;
  installHint?: string;
}

export interface ConnectionSpec {
  /** `https://host:port` (or `http://` for a local proxy / test server). */
  server: string;
  /** PEM text of the CA bundle that signs the API server's certificate. */
  caData?: string;
  insecureSkipTlsVerify?: boolean;
  tlsServerName?: string;
  /** A static bearer token. */
  token?: string;
  /** A file holding a bearer token, re-read on use (in-cluster ServiceAccount tokens rotate). */
  tokenFile?: string;
  /** PEM client certificate and key. */
  clientCertificateData?: string;
  clientKeyData?: string;
  username?: string;
  password?: string;
  exec?: ExecCredentialConfig;
  /** Where the spec came from, for messages (never a credential): `kubeconfig argument`, `$KUBECONFIG`, ... */
  source?: string;
  /** The kubeconfig context it was resolved from, for messages. */
  context?: string;
  /**
   * An ambient reference, not a connection: no credential is stored. The provider re-reads the ambient kubeconfig
   * (`$KUBECONFIG`, `~/.kube/config`, in-cluster) of its own process at each use (rollout/ambient.ts), with
   * `context` if set, and refuses when that kubeconfig's cluster is not `server`.
   */
  ambient?: boolean;
}

/** Fields that carry or yield a credential: never in an ambient reference. */
const CREDENTIAL_FIELDS = [
  "token",
  "tokenFile",
  "clientCertificateData",
  "clientKeyData",
  "username",
  "password",
  "exec",
] as const satisfies readonly (keyof ConnectionSpec)[];

/**
 * What the state keeps of a connection the user did not pass: where it went (server, context, source), no
 * credential. The CA is public, but it is dropped too, since the live kubeconfig brings its own.
 */
export function ambientReference(spec: ConnectionSpec): ConnectionSpec {
  const ref: ConnectionSpec = { ambient: true, server: spec.server };
  if (spec.context) ref.context = spec.context;
  if (spec.source) ref.source = spec.source;
  return ref;
}

/** Two specs reach the same API server (trailing slashes aside). */
export function sameServer(a: string, b: string): boolean {
  return a.replace(/\/+$/, "") === b.replace(/\/+$/, "");
}

/** Problems with a spec, each naming the field and what would be valid; empty when it is usable. */
export function connectionSpecErrors(spec: Partial<ConnectionSpec> | undefined): string[] {
  if (!spec || typeof spec !== "object") return ["connection: expected an object with at least `server`"];
  const errors: string[] = [];
  if (typeof spec.server !== "string" || !/^https?:\/\/[^/]+/.test(spec.server)) {
    errors.push("connection.server: expected an http:// or https:// URL of the Kubernetes API server");
  }
  if (!!spec.clientCertificateData !== !!spec.clientKeyData) {
    errors.push(
      "connection.clientCertificateData/clientKeyData: give both the certificate and its key, or neither",
    );
  }
  if (spec.exec && (typeof spec.exec.command !== "string" || spec.exec.command === "")) {
    errors.push("connection.exec.command: expected the credential plugin's command");
  }
  if (spec.ambient) {
    const held = CREDENTIAL_FIELDS.filter((f) => spec[f] !== undefined);
    if (held.length)
      errors.push(
        `connection.ambient: an ambient reference carries no credential, but it has ${held.join(", ")}`,
      );
  }
  if (!!spec.username !== !!spec.password) {
    errors.push("connection.username/password: give both or neither");
  }
  return errors;
}

/** Human description of a spec that carries no credential: `https://x:6443 (context ci, $KUBECONFIG)`. */
export function describeConnection(spec: ConnectionSpec): string {
  const where = [spec.context ? `context ${spec.context}` : undefined, spec.source]
    .filter(Boolean)
    .join(", ");
  return where ? `${spec.server} (${where})` : spec.server;
}
