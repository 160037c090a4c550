import { describe, expect, it } from 'vitest';
import {
  databaseAddress,
  databaseError,
  DatabaseMissingError,
  DatabaseNotMigratedError,
  DatabaseNotReadyError,
  DatabaseUnreachableError,
  migrateDatabase,
  verifyDatabase,
} from './db.js';

const URL = 'postgres://salt:secret@db.example:6543/jobs';
const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('databaseAddress', () => {
  it('names host, port and database, never the password', () => {
    expect(databaseAddress(URL)).toEqual({
      host: 'db.example',
      port: '6543',
      address: 'db.example:6543',
      database: 'jobs',
      display: 'database "jobs" at db.example:6543',
    });
    expect(databaseAddress('postgres://u@/jobs?host=/var/run/postgresql', {}).address).toBe('/var/run/postgresql:5432');
    expect(databaseAddress('postgres://u@', {}).display).toBe('database "u" at localhost:5432');
    expect(databaseAddress('postgresql://u:p%40ss@[::1]:5433/my%20db', {}).display).toBe('database "my db" at [::1]:5433');
    expect(databaseAddress('not a url', { PGHOST: 'h', PGPORT: '1', PGDATABASE: 'd' }).display).toBe('database "d" at h:1');
  });
});

describe('databaseError', () => {
  it('turns a missing table into one line naming `db migrate`', () => {
    const err = databaseError(pgError('42P01', 'relation "projector_checkpoint" does not exist'), URL);
    expect(err).toBeInstanceOf(DatabaseNotMigratedError);
    expect(err).toMatchObject({
      retryable: false,
      message:
        'the jobledger tables are missing in database "jobs" at db.example:6543: run `npx jobledger db migrate` (or `npx jobledger up`)',
    });
  });

  it.each([
    [pgError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:6543'), 'connection refused', true],
    [
      Object.assign(new AggregateError([new Error('connect ECONNREFUSED ::1:6543')], ''), { code: 'ECONNREFUSED' }),
      'connection refused',
      true,
    ],
    [pgError('ENOTFOUND'), 'unknown host', true],
    [pgError('57P03', 'the database system is starting up'), 'the database system is starting up', true],
    [pgError('28P01', 'password authentication failed for user "salt"'), 'password authentication failed for user "salt"', false],
    [new Error('Connection terminated due to connection timeout'), 'Connection terminated due to connection timeout', true],
  ])('an unreachable server: %s', (cause, reason, retryable) => {
    const err = databaseError(cause, URL);
    expect(err).toBeInstanceOf(DatabaseUnreachableError);
    expect(err).toMatchObject({ message: `cannot reach PostgreSQL at db.example:6543: ${reason}`, retryable });
  });

  it('a missing database', () => {
    const err = databaseError(pgError('3D000', 'database "jobs" does not exist'), URL);
    expect(err).toBeInstanceOf(DatabaseMissingError);
    expect((err as Error).message).toBe(
      'the database "jobs" at db.example:6543 does not exist: create it (`createdb -h db.example -p 6543 jobs`), then run `npx jobledger db migrate`',
    );
  });

  it('leaves other errors alone', () => {
    const other = pgError('22P02', 'invalid input syntax');
    expect(databaseError(other, URL)).toBe(other);
  });
});

describe('against a port where nothing listens', () => {
  it.each([
    ['verifyDatabase', verifyDatabase],
    ['migrateDatabase', migrateDatabase],
  ])('%s throws DatabaseUnreachableError', async (_name, fn) => {
    const err: unknown = await fn('postgres://u@127.0.0.1:1/x').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DatabaseNotReadyError);
    expect(err).toBeInstanceOf(DatabaseUnreachableError);
    expect((err as Error).message).toBe('cannot reach PostgreSQL at 127.0.0.1:1: connection refused');
  });
});

describe('migrationStatements (tables in a named schema)', () => {
  it('moves drizzle-kit\'s "public". qualifiers to the schema and leaves nothing naming public', async () => {
    const { migrationStatements, SchemaError } = await import('./db.js');
    const statements = migrationStatements('replay_1');
    expect(statements.some((s) => s.startsWith('CREATE SEQUENCE "replay_1"."seq_salt_events_id"'))).toBe(true);
    expect(statements.filter((s) => /"?public"?\s*\./i.test(s))).toEqual([]);
    expect(statements.some((s) => s.includes('CREATE TABLE "projector_chain"'))).toBe(true);
    expect(() => migrationStatements('Bad-Name')).toThrow(SchemaError);
    expect(() => migrationStatements('pg_temp')).toThrow(SchemaError);
  });
});
