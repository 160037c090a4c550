import { JetStreamApiError } from '@nats-io/jetstream';

/** nats-server's codes for a store that may not grow (the server's `max_file_store`, an account's limit). */
const STORAGE_FULL_CODES = new Set([
  10023, // JSInsufficientResourcesErr: insufficient resources
  10047, // JSStorageResourcesExceededErr: insufficient storage resources available
]);

/**
 * Whether JetStream refused a write because its store is full. Such a publish was not stored;
 * the same one is accepted once the store has room again (a restarted server, a freed disk).
 */
export function isStorageFull(err: unknown): boolean {
  return err instanceof JetStreamApiError && (STORAGE_FULL_CODES.has(err.code) || /insufficient (storage )?resources/.test(err.message));
}
