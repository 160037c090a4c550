// What starting a local server needs, whichever server it is: a free port, whether a port
// accepts connections yet, and the new part of its log for the error when it does not start.

import { readFile, stat } from 'node:fs/promises';
import net from 'node:net';

/** The end of what `file` gained after `fromOffset`, for an error message ('' if unreadable). */
export async function readTail(file: string, fromOffset: number, maxChars = 4000): Promise<string> {
  try {
    const text = (await readFile(file)).subarray(fromOffset).toString('utf8').trimEnd();
    return text.length > maxChars ? '…' + text.slice(-maxChars) : text;
  } catch {
    return '';
  }
}

/** The size of `file`, 0 when it does not exist yet. */
export async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** Whether a TCP connection to `host:port` opens within a second. */
export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not pick a free port'))));
    });
  });
}
