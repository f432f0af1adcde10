// A real HTTP receiver on 127.0.0.1 (Node, outside workerd) that the Worker delivers to in tests.
// Each path is a separate mailbox; behaviour is scripted per mailbox through its control API.
// Also a closed port: one the system handed out and that was closed again, for "connection refused".
import { createServer } from "node:net";
import type { TestProject } from "vitest/node";
import { startReceiver } from "../../bench/receiver.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    receiverUrl: string;
    closedPort: number;
  }
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export default async function setup(project: TestProject) {
  const receiver = await startReceiver({ port: 0 });
  project.provide("receiverUrl", receiver.url);
  project.provide("closedPort", await closedPort());
  return () => receiver.close();
}
