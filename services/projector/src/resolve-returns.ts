import { resolveReturnBody, ReturnObjectError, type Ledger } from '@jobledger/runtime';
import type { RawMessage } from './projections.js';

/**
 * `ApplyOptions.resolveBody` for the projector and a rebuild: a large return is read back from
 * the object store. An object that is missing or does not match its reference leaves the event
 * as the stream has it (`return` null, `return_object` naming what is gone), so the row shows
 * what happened; the object store being unreachable is thrown, and the batch retried.
 */
export function largeReturnResolver(
  ledger: Ledger,
  onUnresolved?: (m: RawMessage, err: ReturnObjectError) => void,
): (m: RawMessage) => Promise<Uint8Array> {
  return (m) =>
    resolveReturnBody(ledger, m.data).catch((err: unknown) => {
      if (!(err instanceof ReturnObjectError)) throw err;
      onUnresolved?.(m, err);
      return m.data;
    });
}
