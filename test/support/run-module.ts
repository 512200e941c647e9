import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Runs `body` as an ES module in a fresh Node process (from the repository root, so packages resolve as a user's
 * would) and returns the JSON it prints. For tests of what a process loads, which a shared test process cannot show.
 */
export function runModule<T = Record<string, unknown>>(body: string): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', body],
      { cwd: ROOT, timeout: 15_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as T);
      },
    );
  });
}
