import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expandIdList, expandIdWord, IdListError, invalidAgentId, minionTexts } from '@jobledger/core';
import { configFilePath, natsServerList, readConfigFile, sleepUnlessAborted } from '@jobledger/runtime';
import type * as Pki from '@jobledger/runtime/pki';
import { homeLayout, readState, writeFileWhole, writeState, type HomeLayout } from '../home.js';
import { isOurs, reapRecorded, removePid, terminate, writePid } from '../supervisor/pids.js';
import { spawnService, tail, waitReady, type RunningService } from '../supervisor/services.js';
import { authenticate, fetchMasterCa, MasterLinkError, type AuthAnswer } from '../agent/master-link.js';

type PkiModule = typeof Pki;

const BIN = fileURLToPath(new URL('../../bin/jobledger.js', import.meta.url));
export const AGENT_MARKER = 'jobledger.js agent';

function readIdsFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new MasterLinkError(`cannot read the ids file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, false);
  }
}

export interface AgentOptions {
  master?: string;
  id?: string[];
  /** A file of ids: one id, list or range per line, `#` comments. */
  idsFile?: string;
  masterPort?: number;
  detach?: boolean;
}

interface AgentSettings {
  natsUrl: string;
  keysUrl: URL;
  ids: string[];
  masterFinger?: string;
  acceptanceWait: number;
}

/** Salt's minion settings: the flags first, then minion.yaml's `master`, `id`, `master_port`, `master_finger`, `acceptance_wait_time`. */
export function agentSettings(home: string, opts: AgentOptions, env: NodeJS.ProcessEnv = process.env): AgentSettings {
  const file = configFilePath('minion', home, env);
  const conf = readConfigFile(file);
  // Salt's multi-master form too: `master:` as a list; on the command line, comma-separated (a cluster's nodes).
  const master =
    opts.master ??
    (Array.isArray(conf.master) ? conf.master.map(String).join(',') : typeof conf.master === 'string' ? conf.master : undefined);
  if (!master)
    throw new MasterLinkError(`no master: give --master URL (what \`jobledger master url\` prints) or set master: in ${file}`, false);
  const urls = natsServerList(master).map((m) => (/^[a-z]+:\/\//.test(m) ? m : `tls://${m}:4505`));
  for (const url of urls)
    if (!URL.canParse(url) || new URL(url).protocol !== 'tls:')
      throw new MasterLinkError(`the master URL must be tls://host:port, got ${url.slice(0, 200)}`, false);
  if (urls.length === 0) throw new MasterLinkError(`the master URL must be tls://host:port, got ${master.slice(0, 200)}`, false);
  const natsUrl = urls.join(',');
  // The keyserver listens beside the first node.
  const parsed = new URL(urls[0]!);
  const confIds = Array.isArray(conf.id) ? conf.id.map(String) : typeof conf.id === 'string' ? [conf.id] : undefined;
  let flagged: string[];
  try {
    flagged = [
      ...(opts.id ?? []).flatMap((word) => expandIdWord(word)),
      ...(opts.idsFile !== undefined ? expandIdList(readIdsFile(opts.idsFile), { file: true }) : []),
    ];
  } catch (err) {
    if (err instanceof IdListError) throw new MasterLinkError(err.message, false);
    throw err;
  }
  const ids = flagged.length > 0 ? flagged : (confIds ?? [os.hostname()]);
  for (const id of ids) {
    const bad = invalidAgentId(id);
    if (bad) throw new MasterLinkError(`invalid id '${id.slice(0, 80)}': ${bad}`, false);
  }
  if (new Set(ids).size !== ids.length) throw new MasterLinkError('an id is given twice', false);
  const port = opts.masterPort ?? (conf.master_port !== undefined ? Number(conf.master_port) : Number(parsed.port || 4505) + 1);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new MasterLinkError(`master_port must be a port number, got ${String(conf.master_port)}`, false);
  const wait = conf.acceptance_wait_time !== undefined ? Number(conf.acceptance_wait_time) : 10;
  return {
    natsUrl,
    keysUrl: new URL(`https://${parsed.hostname}:${port}/`),
    ids,
    masterFinger: typeof conf.master_finger === 'string' ? conf.master_finger.toLowerCase() : undefined,
    acceptanceWait: Number.isFinite(wait) && wait > 0 ? wait : 10,
  };
}

/** `jobledger agent`: Salt's salt-minion — its key, the wait for acceptance, then the agent service for the accepted ids. */
export async function agentCommand(opts: AgentOptions): Promise<number> {
  const home = homeLayout();
  const running = readState(home)?.supervisorPid;
  if (
    running !== undefined &&
    (isOurs(running, AGENT_MARKER) || isOurs(running, 'jobledger.js up') || isOurs(running, 'jobledger.js master'))
  ) {
    process.stderr.write(`jobledger is already running under ${home.root} (supervisor pid ${running}); run \`npx jobledger down\` first\n`);
    return 1;
  }
  let settings: AgentSettings;
  try {
    settings = agentSettings(home.root, opts);
  } catch (err) {
    process.stderr.write(`jobledger agent: ${(err as Error).message}\n`);
    return 2;
  }
  return opts.detach ? startDetached(home, opts) : superviseAgent(home, settings);
}

async function startDetached(home: HomeLayout, opts: AgentOptions): Promise<number> {
  fs.mkdirSync(home.logDir, { recursive: true });
  fs.mkdirSync(home.runDir, { recursive: true });
  const readyFile = path.join(home.runDir, 'agent.ready');
  fs.rmSync(readyFile, { force: true });
  const logFile = path.join(home.logDir, 'minion.log');
  const out = fs.openSync(logFile, 'a');
  const args = [
    BIN,
    'agent',
    ...(opts.master ? ['--master', opts.master] : []),
    ...(opts.id ?? []).flatMap((id) => ['--id', id]),
    ...(opts.idsFile !== undefined ? ['--ids-file', path.resolve(opts.idsFile)] : []),
  ];
  if (opts.masterPort !== undefined) args.push('--master-port', String(opts.masterPort));
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out], env: process.env });
  fs.closeSync(out);
  child.unref();
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    if (fs.existsSync(readyFile)) {
      process.stdout.write(fs.readFileSync(readyFile, 'utf8'));
      return 0;
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      process.stderr.write(`jobledger agent failed (see ${logFile}):\n${tail(logFile, 25)}\n`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.stderr.write(`jobledger agent was not ready after 120 s (see ${logFile})\n`);
  return 1;
}

/** Salt's minion log line: `[LEVEL   ] text`. */
function saltLog(level: 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL', text: string): void {
  const stamp = new Date().toISOString().replace('T', ' ').replace('Z', '');
  for (const line of text.split('\n')) process.stdout.write(`${stamp} [${level.padEnd(8)}] ${line}\n`);
}

async function trustMaster(home: HomeLayout, s: AgentSettings, pki: PkiModule): Promise<string> {
  const file = pki.agentPkiFiles(path.join(home.root, 'pki')).masterCa;
  const pinned = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
  if (pinned !== undefined) {
    const fp = pki.certificateFingerprint(pinned);
    if (s.masterFinger && s.masterFinger !== fp) throw new MasterLinkError(minionTexts.fingerMismatch(s.masterFinger, fp), false);
    return pinned;
  }
  const ca = await fetchMasterCa(s.keysUrl);
  const fp = pki.certificateFingerprint(ca);
  if (s.masterFinger && s.masterFinger !== fp) throw new MasterLinkError(minionTexts.fingerMismatch(s.masterFinger, fp), false);
  if (!s.masterFinger)
    saltLog('WARNING', `Trusting the master's fingerprint on first use: ${fp} (set master_finger in minion.yaml to pin it)`);
  pki.writePublicFile(file, ca);
  return ca;
}

async function superviseAgent(home: HomeLayout, s: AgentSettings): Promise<number> {
  for (const d of [home.root, home.runDir, home.logDir]) fs.mkdirSync(d, { recursive: true });
  await reapRecorded(home.runDir, [process.pid]);
  writePid(home.runDir, { name: 'supervisor', pid: process.pid, marker: AGENT_MARKER });
  writeState(home, {
    natsUrl: s.natsUrl,
    databaseUrl: '',
    stream: process.env.JOBLEDGER_STREAM || 'LEDGER',
    supervisorPid: process.pid,
    role: 'agent',
  });
  const readyFile = path.join(home.runDir, 'agent.ready');
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  process.once('SIGINT', () => stop.abort());

  const pki = await import('@jobledger/runtime/pki');
  const pkiDir = path.join(home.root, 'pki');
  const kp = pki.loadOrCreateAgentKey(pkiDir);
  saltLog('INFO', `Agent ${s.ids.join(', ')} with key ${pki.nkeyFingerprint(kp.getPublicKey())}, master ${s.natsUrl}`);

  let service: { svc: RunningService; ids: string[]; exited: Promise<void> } | undefined;
  const stopService = async () => {
    if (!service) return;
    const pid = service.svc.child.pid;
    if (pid) await terminate(pid);
    removePid(home.runDir, 'agent');
    service = undefined;
  };
  const ready = (text: string) => {
    if (!fs.existsSync(readyFile)) writeFileWhole(readyFile, text);
  };
  let code = 0;
  try {
    let ca: string | undefined;
    let quiet = false;
    while (!stop.signal.aborted) {
      let answer: AuthAnswer;
      try {
        ca ??= await trustMaster(home, s, pki);
        answer = await authenticate(s.keysUrl, ca, { ...pki.signAuthRequest(kp, s.ids), wait: service ? 0 : s.acceptanceWait });
      } catch (err) {
        if (err instanceof MasterLinkError && !err.retryable) {
          saltLog('CRITICAL', err.message);
          code = 1;
          break;
        }
        saltLog('ERROR', `${(err as Error).message}; retrying in ${s.acceptanceWait} seconds`);
        ready(`agent ${s.ids.join(',')} under ${home.root}: the master is not reachable yet\n`);
        await sleepUnlessAborted(s.acceptanceWait * 1000, stop.signal);
        continue;
      }
      const accepted = s.ids.filter((id) => answer.states[id] === 'accepted');
      const rejected = s.ids.filter((id) => answer.states[id] === 'rejected');
      if (rejected.length === s.ids.length) {
        for (const line of minionTexts.rejected) saltLog('CRITICAL', line);
        code = 1;
        break;
      }
      if (accepted.length === 0 || answer.jwt === undefined) {
        await stopService();
        ready(`agent ${s.ids.join(',')} under ${home.root}: key pending (fingerprint ${pki.nkeyFingerprint(kp.getPublicKey())})\n`);
        if (!quiet) {
          saltLog('ERROR', minionTexts.waiting(s.acceptanceWait));
          saltLog('INFO', minionTexts.retry(s.acceptanceWait));
        }
        quiet = true;
        continue; // the request itself waited up to acceptance_wait_time
      }
      quiet = false;
      if (!service || service.ids.join(',') !== accepted.join(',')) {
        await stopService();
        const credsFile = pki.writeAgentCreds(pkiDir, answer.jwt, kp);
        const caFile = pki.agentPkiFiles(pkiDir).masterCa;
        const svc = spawnService(
          {
            name: 'agent',
            kind: 'agent',
            env: {
              JOBLEDGER_HOME: home.root,
              JOBLEDGER_NATS_URL: s.natsUrl,
              JOBLEDGER_NATS_CREDS: credsFile,
              JOBLEDGER_NATS_CA: caFile,
              JOBLEDGER_AGENT_IDS: accepted.join(','),
              JOBLEDGER_AGENT_GROUP: answer.group,
            },
          },
          home,
          process.env,
        );
        if (svc.child.pid) writePid(home.runDir, { name: 'agent', pid: svc.child.pid, marker: 'dist/main.js' });
        const exited = new Promise<void>((r) => svc.child.once('exit', () => r()));
        service = { svc, ids: accepted, exited };
        try {
          await waitReady(svc);
          saltLog('INFO', `Key accepted for ${accepted.join(', ')}: answering jobs`);
        } catch (err) {
          saltLog('ERROR', (err as Error).message);
          service = undefined;
          await sleepUnlessAborted(1000, stop.signal);
          continue;
        }
        ready(`agent ${accepted.join(',')} under ${home.root}: accepted\n`);
      }
      // Ask again after acceptance_wait_time, or at once when the service ends (cut off by the master).
      const exited = service.exited;
      const wake = new AbortController();
      const onStop = () => wake.abort();
      stop.signal.addEventListener('abort', onStop, { once: true });
      void exited.then(() => wake.abort());
      await sleepUnlessAborted(s.acceptanceWait * 1000, wake.signal);
      stop.signal.removeEventListener('abort', onStop);
      if (service && service.svc.child.exitCode !== null) {
        saltLog('ERROR', `the agent service ended (${service.svc.child.exitCode}): ${tail(service.svc.logFile, 1)}`);
        removePid(home.runDir, 'agent');
        service = undefined;
      }
    }
  } finally {
    await stopService();
    const state = readState(home);
    if (state) writeState(home, { ...state, supervisorPid: undefined });
    removePid(home.runDir, 'supervisor');
    fs.rmSync(readyFile, { force: true });
  }
  return code;
}
