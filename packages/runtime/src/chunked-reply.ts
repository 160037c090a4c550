import { headers, type Msg } from '@nats-io/transport-node';
import { CHUNKS_HEADER, chunkBody } from '@jobledger/core';

/** Room left in a message for headers. */
export const HEADER_ROOM = 1024;

const encoder = new TextEncoder();

/**
 * Answers a `requestMany` with a JSON reply that may be larger than one message: its bytes in
 * chunks that each fit (every one carrying `Jobledger-Chunks`), then an empty sentinel.
 */
export function respondChunked(msg: Msg, reply: unknown, maxPayload: number): void {
  if (!msg.reply) return;
  const chunks = chunkBody(encoder.encode(JSON.stringify(reply)), Math.max(1024, maxPayload - HEADER_ROOM));
  for (const c of chunks) {
    const h = headers();
    h.set(CHUNKS_HEADER, String(chunks.length));
    msg.respond(c, { headers: h });
  }
  msg.respond(new Uint8Array(0));
}
