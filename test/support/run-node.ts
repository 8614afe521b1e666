// Runs a Node script of the project's in a child process, for tests that check a whole program
// (the demo, the Prometheus capture) end to end.
import { spawn } from 'node:child_process';

/**
 * Runs `node <script> ...args` in `cwd` with `env` added to this process's environment, and
 * resolves with its exit code and everything it wrote to stdout and stderr, interleaved. The child
 * is killed (SIGKILL) if it has not exited after `killAfterMs`.
 */
export function runNode(
  script: string,
  args: readonly string[],
  { cwd, env = {}, killAfterMs }: { cwd: string; env?: Record<string, string>; killAfterMs: number },
): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [script, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    const guard = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.once('error', fail);
    child.once('exit', (code) => {
      clearTimeout(guard);
      done({ code, output });
    });
  });
}
