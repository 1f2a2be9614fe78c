// Runs a real client binary (kubectl, helm) against kube-sim with the kubeconfig the simulator wrote and default
// flags: only KUBECONFIG and a scratch HOME (for discovery and Helm caches) are set.
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ClientEnv {
  kubeconfig: string;
  home: string;
  close(): void;
}

export function clientEnv(kubeconfig: string): ClientEnv {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "kube-client-home-"));
  return { kubeconfig, home, close: () => fs.rmSync(home, { recursive: true, force: true }) };
}

/** The whole environment of a client process: PATH, KUBECONFIG and a scratch HOME, nothing else. */
function clientEnvironment(env: ClientEnv): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: env.home,
    KUBECONFIG: env.kubeconfig,
    // Helm keeps its own state under XDG folders: inside the scratch HOME.
    XDG_CACHE_HOME: path.join(env.home, ".cache"),
    XDG_CONFIG_HOME: path.join(env.home, ".config"),
    XDG_DATA_HOME: path.join(env.home, ".local/share"),
  };
}

export function run(binary: string, args: string[], env: ClientEnv, input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      binary,
      args,
      {
        env: clientEnvironment(env),
        timeout: 60_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/** Runs and fails with the client's own output when it does not exit 0. */
export async function ok(binary: string, args: string[], env: ClientEnv, input?: string): Promise<string> {
  const r = await run(binary, args, env, input);
  if (r.code !== 0) {
    throw new Error(`${path.basename(binary)} ${args.join(" ")} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

/** The header cells of a `kubectl get` table (columns are separated by 2+ spaces). */
export function headerOf(table: string): string[] {
  return table
    .split("\n")[0]
    .trim()
    .split(/\s{2,}/);
}

/** The rows of a `kubectl get` table as cell arrays. */
export function rowsOf(table: string): string[][] {
  return table
    .split("\n")
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => l.trim().split(/\s{2,}/));
}

export interface WatchedOutput {
  /** Resolves with the output so far once `done` holds for it; rejects when the client exits first. */
  until(done: (stdout: string) => boolean, timeoutMs?: number): Promise<string>;
  stop(): void;
}

/** Runs a long-lived client command (`kubectl get -w`) and lets a test wait on what it has printed. */
export function watchOutput(binary: string, args: string[], env: ClientEnv): WatchedOutput {
  const child = spawn(binary, args, { env: clientEnvironment(env), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let exited = false;
  const listeners = new Set<() => void>();
  const notify = (): void => listeners.forEach((l) => l());
  child.stdout.on("data", (c: Buffer) => {
    stdout += c.toString();
    notify();
  });
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  child.on("exit", () => {
    exited = true;
    notify();
  });
  return {
    until: (done, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (done(stdout)) finish(() => resolve(stdout));
          else if (exited) finish(() => reject(new Error(`${binary} exited:\n${stderr}${stdout}`)));
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`timed out; output so far:\n${stderr}${stdout}`))),
          timeoutMs,
        );
        const finish = (settle: () => void): void => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      }),
    stop: () => {
      if (!exited) child.kill();
    },
  };
}
