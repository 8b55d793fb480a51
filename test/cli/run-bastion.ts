import { spawn, spawnSync } from 'node:child_process';

/** The `bastion` command as installed (bin/bastion.js), run in a process of its own. */
export const bin = new URL('../../bin/bastion.js', import.meta.url).pathname;

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bastion args` to its end, with `env` over this process's environment. */
export function cli(args: string[], env: Record<string, string | undefined> = {}) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

/** The same, without blocking: servers and stores in this process go on meanwhile. */
export function cliAsync(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
