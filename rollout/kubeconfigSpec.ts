// A loaded kubeconfig → the plain ConnectionSpec the provider connects with. Node built-ins only: both the program
// side (rollout/resolveConnection.ts, the kubeconfig argument) and the serialized provider (rollout/ambient.ts, the
// ambient kubeconfig re-read at each use) build specs with it, so the two follow one rule.
import { readFileSync } from "node:fs";
import { connectionSpecErrors, type ConnectionSpec } from "./connection";

export class ConnectionResolutionError extends Error {
  constructor(message: string) {
    super(message);
    // Set here, not as a field initializer: the serialized provider keeps constructor bodies only.
    this.name = "ConnectionResolutionError";
  }
}

/** The parts of @kubernetes/client-node's KubeConfig read here (structural: this file imports no library). */
export interface LoadedKubeConfig {
  currentContext: string;
  getCurrentContext(): string;
  getCurrentCluster(): {
    server: string;
    caData?: string;
    caFile?: string;
    skipTLSVerify?: boolean;
    tlsServerName?: string;
  } | null;
  getCurrentUser(): {
    name: string;
    certData?: string;
    certFile?: string;
    keyData?: string;
    keyFile?: string;
    token?: string;
    username?: string;
    password?: string;
    exec?: unknown;
    authProvider?: unknown;
  } | null;
}

/** How an ambient kubeconfig (loaded with `loadFromDefault`) is named in messages. */
export function ambientSource(kc: Pick<LoadedKubeConfig, "currentContext">): string {
  return process.env.KUBECONFIG
    ? "$KUBECONFIG"
    : kc.currentContext === "inClusterContext"
      ? "in-cluster"
      : "~/.kube/config";
}

/** kubeconfig `*-data` fields are base64 of PEM; files are read now, because the provider may run elsewhere later. */
function pemFrom(
  data: string | undefined | null,
  file: string | undefined | null,
  field: string,
): string | undefined {
  if (data) return Buffer.from(data, "base64").toString("utf8");
  if (file) {
    try {
      return readFileSync(file, "utf8");
    } catch (err) {
      throw new ConnectionResolutionError(`kubeconfig ${field} ${file}: ${(err as Error).message}`);
    }
  }
  return undefined;
}

/** The spec of a loaded kubeconfig's current context; every failure names the kubeconfig field and what is valid. */
export function specFromKubeConfig(kc: LoadedKubeConfig, source: string): ConnectionSpec {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster) {
    throw new ConnectionResolutionError(
      `kubeconfig (${source}): the current context "${kc.getCurrentContext()}" names no cluster; set current-context or pass a context`,
    );
  }
  const spec: ConnectionSpec = {
    server: cluster.server,
    caData: pemFrom(cluster.caData, cluster.caFile, "certificate-authority"),
    insecureSkipTlsVerify: cluster.skipTLSVerify || undefined,
    tlsServerName: cluster.tlsServerName || undefined,
    source,
    context: kc.getCurrentContext() || undefined,
  };
  if (user) {
    spec.clientCertificateData = pemFrom(user.certData, user.certFile, "client-certificate");
    spec.clientKeyData = pemFrom(user.keyData, user.keyFile, "client-key");
    if (user.token) spec.token = user.token;
    if (user.username) {
      spec.username = user.username;
      spec.password = user.password ?? "";
    }
    const provider = user.authProvider as
      { name?: string; config?: Record<string, unknown> } | null | undefined;
    if (user.exec) {
      const exec = user.exec as {
        command: string;
        args?: string[];
        env?: { name: string; value: string }[] | null;
        apiVersion?: string;
        installHint?: string;
      };
      spec.exec = {
        command: exec.command,
        args: exec.args ?? undefined,
        env: exec.env ?? undefined,
        apiVersion: exec.apiVersion,
        installHint: exec.installHint,
      };
    } else if (provider?.name === "tokenFile" && typeof provider.config?.tokenFile === "string") {
      // In-cluster: keep the path (the kubelet rotates the token) and today's token as a fallback.
      spec.tokenFile = provider.config.tokenFile;
    } else if (provider) {
      throw new ConnectionResolutionError(
        `kubeconfig user "${user.name}": auth-provider "${provider.name}" is not supported by the rollout; ` +
          `use an exec credential plugin (users[].user.exec), a token or a client certificate`,
      );
    }
  }
  // Drop empty optionals so the secret input stays small and stable.
  for (const key of Object.keys(spec) as (keyof ConnectionSpec)[])
    if (spec[key] === undefined) delete spec[key];
  const errors = connectionSpecErrors(spec);
  if (errors.length) throw new ConnectionResolutionError(`kubeconfig (${source}): ${errors.join("; ")}`);
  return spec;
}
