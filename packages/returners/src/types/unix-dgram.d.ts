// Types for the parts of `unix-dgram` (a native Unix datagram socket binding) jobledger uses.
declare module 'unix-dgram' {
  import type { EventEmitter } from 'node:events';

  export interface UnixDgramSocket extends EventEmitter {
    bind(path: string): void;
    connect(path: string): void;
    /** Unconnected send; `err.code` is the negated errno on failure. */
    send(buf: Buffer, offset: number, length: number, path: string, callback?: (err?: Error & { code?: number }) => void): void;
    close(): void;
  }

  export function createSocket(
    type: 'unix_dgram',
    listener?: (msg: Buffer, rinfo: { size: number; path?: string }) => void,
  ): UnixDgramSocket;
}
