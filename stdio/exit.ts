// Exit codes are only half of a program's contract: the other half is its output, which must all arrive.
// `process.exit` ends the process at once, and a pipe only holds 64 KiB: what the reader has not taken yet is
// lost. So the commands end through `exitWhenFlushed`, which waits for stdout and stderr first.
import { CommanderError } from "commander";

/** Exit code of every command for a bad option, argument or input file. */
export const EXIT_USAGE = 2;

/** A bad option or input file: printed as `<command>: <message>`, exit code 2. */
export class UsageError extends Error {}

/** The exit code for an error commander threw (after `exitOverride()`; it has already printed the message). */
export function commanderExitCode(err: CommanderError): number {
  return err.exitCode === 0 ? 0 : EXIT_USAGE;
}

/** Resolves once everything written to `stream` so far has been handed to the OS (or the reader is gone). */
export function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) return resolve();
    const done = () => {
      stream.off("close", done);
      resolve();
    };
    stream.once("close", done);
    // Writes complete in order, so the callback of an empty write runs after every earlier chunk is written.
    stream.write("", done);
  });
}

/** Exits with `code` once stdout and stderr are flushed. */
export async function exitWhenFlushed(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

/** A reader that went away (`| head`) is not a failure of the program: later writes are dropped, the code kept. */
function ignoreClosedReader(stream: NodeJS.WriteStream): void {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  });
}

/**
 * Runs a command line program and exits once all its output is delivered. `main` resolves to the exit code.
 * A UsageError or a commander parse error exits 2; any other error is printed as `<name>: <description>` and
 * exits with `crashCode`.
 */
export function runCommand(
  name: string,
  main: () => Promise<number>,
  crashCode: number,
  describeError: (err: unknown) => string = (err) => (err instanceof Error ? err.message : String(err)),
): void {
  ignoreClosedReader(process.stdout);
  ignoreClosedReader(process.stderr);
  main().then(
    (code) => exitWhenFlushed(code),
    (err: unknown) => {
      if (err instanceof CommanderError) return exitWhenFlushed(commanderExitCode(err));
      const usage = err instanceof UsageError;
      process.stderr.write(`${name}: ${usage ? err.message : describeError(err)}\n`);
      return exitWhenFlushed(usage ? EXIT_USAGE : crashCode);
    },
  );
}
