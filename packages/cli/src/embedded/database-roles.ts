import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';

/**
 * No service uses a superuser. On the embedded PostgreSQL the master keeps two login roles:
 * - `jobledger_owner` owns the `jobledger` database and every read model (the projector, which
 *   migrates and writes them; `replay` and `audit verify`, which build schemas beside them; the
 *   URL `db url` prints). It is not a superuser: no `COPY … TO PROGRAM`, no server files, no
 *   other databases' objects.
 * - `jobledger_reader` may connect and `SELECT`, nothing else (the dispatcher's runner, which
 *   only reads; `db url --read-only` for analysts). Default privileges give it every table and
 *   schema the owner creates later (migrations, a swapped-in rebuild).
 * The superuser stays what `initdb` made, used only here, as `admin.creds` is for NATS. Their
 * passwords live in `<home>/pki/db-owner.secret` and `db-reader.secret` (0600).
 */

export const OWNER_ROLE = 'jobledger_owner';
export const READER_ROLE = 'jobledger_reader';

function secret(file: string): string {
  try {
    const s = fs.readFileSync(file, 'utf8').trim();
    if (s !== '') return s;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const s = randomBytes(24).toString('hex');
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, s + '\n', { mode: 0o600 });
  return s;
}

const ident = (s: string) => '"' + s.replace(/"/g, '""') + '"';

async function ensureRole(client: pg.Client, role: string, password: string): Promise<void> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  const verb = rowCount ? 'ALTER' : 'CREATE';
  await client.query(
    `${verb} ROLE ${ident(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${client.escapeLiteral(password)}`,
  );
}

/** Objects in the database's own schemas that someone else than the owner owns (a home from before the roles). */
async function transferOwnership(client: pg.Client): Promise<void> {
  const own = `pg_get_userbyid(%s) NOT IN ('${OWNER_ROLE}', 'pg_database_owner')`;
  const userSchemas = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`;
  const { rows: schemas } = await client.query<{ nspname: string }>(
    `SELECT n.nspname FROM pg_namespace n WHERE ${userSchemas} AND ${own.replace('%s', 'n.nspowner')}`,
  );
  for (const s of schemas) await client.query(`ALTER SCHEMA ${ident(s.nspname)} OWNER TO ${OWNER_ROLE}`);
  // Tables carry their indexes and owned sequences with them; other sequences and views go alone.
  const { rows } = await client.query<{ nspname: string; relname: string; relkind: string }>(
    `SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE ${userSchemas} AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND ${own.replace('%s', 'c.relowner')}
       AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
     ORDER BY c.relkind DESC`,
  );
  const kind: Record<string, string> = { r: 'TABLE', p: 'TABLE', f: 'FOREIGN TABLE', v: 'VIEW', m: 'MATERIALIZED VIEW', S: 'SEQUENCE' };
  for (const r of rows) await client.query(`ALTER ${kind[r.relkind]} ${ident(r.nspname)}.${ident(r.relname)} OWNER TO ${OWNER_ROLE}`);
}

/** Makes the roles (and hands existing objects to the owner); returns the owner's and the reader's URLs. */
export async function ensureDatabaseRoles(adminDatabaseUrl: string, pkiDir: string): Promise<{ ownerUrl: string; readerUrl: string }> {
  const ownerPassword = secret(path.join(pkiDir, 'db-owner.secret'));
  const readerPassword = secret(path.join(pkiDir, 'db-reader.secret'));
  const url = new URL(adminDatabaseUrl);
  const database = decodeURIComponent(url.pathname.slice(1));
  const client = new pg.Client({ connectionString: adminDatabaseUrl });
  await client.connect();
  try {
    await ensureRole(client, OWNER_ROLE, ownerPassword);
    await ensureRole(client, READER_ROLE, readerPassword);
    await client.query(`ALTER DATABASE ${ident(database)} OWNER TO ${OWNER_ROLE}`);
    await client.query(`REVOKE ALL ON DATABASE ${ident(database)} FROM PUBLIC`);
    await client.query(`GRANT CONNECT ON DATABASE ${ident(database)} TO ${READER_ROLE}`);
    await transferOwnership(client);
    await client.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${OWNER_ROLE} GRANT SELECT ON TABLES TO ${READER_ROLE}`);
    await client.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${OWNER_ROLE} GRANT USAGE ON SCHEMAS TO ${READER_ROLE}`);
    const { rows } = await client.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'`,
    );
    for (const s of rows) {
      await client.query(`GRANT USAGE ON SCHEMA ${ident(s.nspname)} TO ${READER_ROLE}`);
      await client.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${ident(s.nspname)} TO ${READER_ROLE}`);
    }
  } finally {
    await client.end();
  }
  const as = (user: string, password: string) => {
    const u = new URL(adminDatabaseUrl);
    u.username = user;
    u.password = password;
    return u.toString();
  };
  return { ownerUrl: as(OWNER_ROLE, ownerPassword), readerUrl: as(READER_ROLE, readerPassword) };
}
