// Types for the parts of wrangler.mjs that TypeScript tests use (test/node/).
export interface Worker {
  label: string;
  url: string;
  persistTo: string;
  pid: number;
  logPath: string;
  cpu(): { worker: number; proxy: number; wrangler: number };
  stop(): Promise<void>;
}

export function startWorker(options: {
  label: string;
  config: string;
  port: number;
  inspectorPort: number;
  persistTo?: string;
  d1?: string;
  vars?: Record<string, string>;
  proxy?: boolean;
  readyPath?: string;
}): Promise<Worker>;

export function setLogDir(dir: string): string;
export function wranglerSync(args: string[], options?: { cwd?: string }): string;
export const ROOT: string;
