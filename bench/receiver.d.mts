export interface Receiver {
  url: string;
  mailboxes: Map<string, { requests: { headers: Record<string, string>; body: string; receivedAt: number }[]; count: number }>;
  close(): Promise<void>;
}
export function startReceiver(options?: { port?: number; host?: string; keepBodies?: boolean }): Promise<Receiver>;
