import type { Msg, Subscription } from '@nats-io/transport-node';
import { z } from 'zod';
import {
  EauthTexts,
  ErrorCodes,
  JidGenerator,
  KEY_DIRS,
  KEY_STATES,
  eauthRules,
  parseExternalAuth,
  runnerRequest,
  saltStamp,
  specCheck,
  splitNetapiRequest,
  systemMicros,
  zodIssuesText,
  apiSubjects,
  type KeyAction,
  type KeyListing,
  type RunnerReply,
  type RunnerRequest,
} from '@jobledger/core';
import { appendPublishDenied, readConfigFile, respondChunked, type EventSigner, type Ledger, type Logger } from '@jobledger/runtime';
import * as pki from '@jobledger/runtime/pki';

/**
 * salt-api's `wheel` client for the key functions (Salt's `salt/wheel/key.py`), served on
 * `jobledger.netapi.wheel` for the HTTP API's users. The keyserver owns the key store, so the
 * calls run here: `key.list_all`, `key.list`, `key.accept`, `key.reject`, `key.delete`,
 * `key.finger`. Each is checked against the user's `external_auth` rules (`@wheel`, `@key`, …,
 * Salt's `spec_check`); a refusal is recorded in the ledger as a `publish.denied` event. A change
 * is recorded as key events, and a rejected or deleted accepted key is revoked at once.
 */

export interface WheelOptions {
  ledger: Ledger;
  signer: EventSigner;
  store: pki.KeyStore;
  pkiDir: string;
  natsUrl: string;
  /** master.yaml: its `external_auth` is read on every call, as the dispatcher reads it. */
  masterConfigFile: string;
  /** Appends the key events the ledger lacks for these ids. */
  syncKeyEvents: (ids: readonly string[]) => Promise<number>;
  logger: Logger;
  queue?: string;
}

type Kwargs = Record<string, unknown>;

interface WheelFunction {
  /** Parameter names in order (positional arguments bind to them). */
  params: readonly string[];
  run: (kw: Kwargs) => unknown;
}

class WheelArgumentError extends Error {
  override readonly name = 'WheelArgumentError';
  readonly retryable = false;
}

const truthy = (v: unknown) => v === true || v === 'True' || v === 'true' || v === 1;

/** The public files of the master's own keys, Salt's `local` keys. */
const LOCAL_KEYS = ['ca.pem'];

function matchArg(kw: Kwargs): string[] {
  const m = kw.match;
  if (typeof m === 'string' && m !== '') return pki.saltNameMatch(m);
  if (Array.isArray(m) && m.every((x) => typeof x === 'string')) return m;
  throw new WheelArgumentError("match: name the keys, a glob such as 'web*'");
}

/** Salt's `name_match` result: the matching ids under each state's directory name, only states that match. */
function byDir(matched: Partial<KeyListing>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const state of KEY_STATES) {
    const ids = matched[state];
    if (ids && ids.length > 0) out[KEY_DIRS[state]] = [...ids].sort();
  }
  return out;
}

/** Salt's `list_status` abbreviations. */
function statusStates(status: string): readonly (typeof KEY_STATES)[number][] | undefined {
  if (status.startsWith('acc')) return ['accepted'];
  if (status.startsWith('pre') || status.startsWith('un')) return ['pending'];
  if (status.startsWith('rej')) return ['rejected'];
  if (status.startsWith('den')) return ['denied'];
  if (status.startsWith('all')) return KEY_STATES;
  return undefined;
}

export function bindWheelArgs(fn: WheelFunction, req: Pick<RunnerRequest, 'arg' | 'kwarg'>): Kwargs {
  const kw: Kwargs = {};
  if (req.arg.length > fn.params.length) throw new WheelArgumentError(`takes at most ${fn.params.length} positional arguments`);
  req.arg.forEach((v, i) => (kw[fn.params[i]!] = v));
  for (const [k, v] of Object.entries(req.kwarg)) {
    if (k.startsWith('__')) continue;
    if (!fn.params.includes(k)) throw new WheelArgumentError(`unexpected keyword argument '${k}'`);
    // As Python: a keyword may not give a parameter a second value (the ACL checked the first).
    if (k in kw) throw new WheelArgumentError(`got multiple values for argument '${k}'`);
    kw[k] = v;
  }
  return kw;
}

export async function startWheelService(o: WheelOptions): Promise<{ stop(): Promise<void> }> {
  const log = o.logger.child({ component: 'wheel' });
  const jids = new JidGenerator(systemMicros);
  const maxPayload = () => o.ledger.nc.info?.max_payload ?? 1024 * 1024;

  const changeKeys = async (action: KeyAction, kw: Kwargs, include: Parameters<typeof pki.actionSources>[1]) => {
    const match = matchArg(kw);
    const matched = pki.matchKeys(o.store.list(), match, pki.actionSources(action, include));
    const change = pki.applyKeyAction(o.store, action, matched);
    for (const { id, state } of change.done) log.info({ agent: id, from: state, action }, 'key changed through the API');
    pki.revokeKeys(o.pkiDir, change.revoke);
    try {
      await pki.cutOffRunning({ pkiDir: o.pkiDir, natsUrl: o.natsUrl, ledger: o.ledger, change });
    } catch (err) {
      log.error({ err }, 'could not cut the revoked agents off at once; applied at the next start');
    }
    if (change.done.length > 0) await o.syncKeyEvents([...new Set(change.done.map((d) => d.id))]);
    return byDir(pki.matchKeys(o.store.list(), match, KEY_STATES));
  };

  const functions: Record<string, WheelFunction> = {
    'key.list_all': {
      params: [],
      run: () => {
        const l = o.store.list();
        return { local: LOCAL_KEYS, ...Object.fromEntries(KEY_STATES.map((s) => [KEY_DIRS[s], [...l[s]].sort()])) };
      },
    },
    'key.list': {
      params: ['match'],
      run: (kw) => {
        const states = typeof kw.match === 'string' ? statusStates(kw.match) : undefined;
        if (states === undefined) throw new WheelArgumentError("match: a key status, one of 'acc', 'pre', 'un', 'rej', 'den' or 'all'");
        const l = o.store.list();
        return Object.fromEntries(states.map((s) => [KEY_DIRS[s], [...l[s]].sort()]));
      },
    },
    'key.accept': {
      params: ['match', 'include_rejected', 'include_denied'],
      run: (kw) => changeKeys('accept', kw, { rejected: truthy(kw.include_rejected), denied: truthy(kw.include_denied) }),
    },
    'key.reject': {
      params: ['match', 'include_accepted', 'include_denied'],
      run: (kw) => changeKeys('reject', kw, { accepted: truthy(kw.include_accepted), denied: truthy(kw.include_denied) }),
    },
    'key.delete': { params: ['match'], run: (kw) => changeKeys('delete', kw, {}) },
    'key.finger': {
      params: ['match', 'hash_type'],
      run: (kw) => {
        const match = matchArg(kw);
        const out: Record<string, Record<string, string>> = {};
        const local = pki.matchKeys({ accepted: LOCAL_KEYS, denied: [], pending: [], rejected: [] }, match, ['accepted']).accepted;
        const pem = pki.readText(pki.pkiFiles(o.pkiDir).ca);
        if (local && pem !== undefined) out.local = { 'ca.pem': pki.certificateFingerprint(pem) };
        const matched = pki.matchKeys(o.store.list(), match, KEY_STATES);
        for (const state of KEY_STATES) {
          for (const id of [...(matched[state] ?? [])].sort()) {
            const publicKey = o.store.read(state, id);
            if (publicKey !== undefined) (out[KEY_DIRS[state]] ??= {})[id] = pki.nkeyFingerprint(publicKey);
          }
        }
        return out;
      },
    },
  };

  /** The user's eauth rules from master.yaml, or why there are none. */
  const rulesOf = (user: string, eauth: string): { rules: ReturnType<typeof eauthRules>; reason?: string } => {
    try {
      const doc = readConfigFile(o.masterConfigFile);
      const backend = parseExternalAuth(doc)[eauth];
      if (backend === undefined) return { rules: [], reason: `the eauth backend ${eauth} is not configured` };
      return { rules: eauthRules(backend, user, [], doc.permissive_acl === true) };
    } catch (err) {
      return { rules: [], reason: `the master configuration cannot be used (${(err as Error).message})` };
    }
  };

  const deny = async (req: RunnerRequest, eauth: string, reason: string): Promise<RunnerReply> => {
    const message = EauthTexts.specDenied('token', req.user);
    log.warn({ user: req.user, fun: `wheel.${req.fun}` }, reason);
    try {
      const seq = await appendPublishDenied(o.ledger, o.signer, {
        user: req.user,
        fun: `wheel.${req.fun}`,
        tgt: '',
        tgt_type: 'glob',
        error: 'AuthenticationError',
        message,
        reason,
        eauth,
        _stamp: saltStamp(systemMicros()),
      });
      log.info({ seq }, 'denied wheel call recorded');
    } catch (err) {
      log.error({ err }, 'could not record the denied wheel call in the ledger');
    }
    return { error: { code: ErrorCodes.Authentication, message } };
  };

  const handle = async (msg: Msg): Promise<RunnerReply> => {
    let req: RunnerRequest;
    let eauth: string;
    try {
      const split = splitNetapiRequest(msg.json<unknown>());
      if (split.eauth === undefined) throw new Error('eauth: a wheel call names the eauth backend of its user');
      eauth = split.eauth;
      req = runnerRequest.parse(split.request);
    } catch (err) {
      const message = err instanceof z.ZodError ? zodIssuesText(err) : `request is not usable: ${(err as Error).message.slice(0, 200)}`;
      return { error: { code: ErrorCodes.Validation, message } };
    }
    const { rules, reason } = rulesOf(req.user, eauth);
    if (!specCheck(rules, req.fun, 'wheel', req.arg, req.kwarg))
      return deny(req, eauth, reason ?? `${req.user} may not run the wheel function ${req.fun}`);
    const jid = jids.next();
    const fn = functions[req.fun];
    if (fn === undefined) return { jid, return: `'${req.fun}' is not available.`, success: false, retcode: 1 };
    try {
      const ret = await fn.run(bindWheelArgs(fn, req));
      log.info({ jid, fun: `wheel.${req.fun}`, user: req.user }, 'wheel call');
      return { jid, return: ret, success: true, retcode: 0 };
    } catch (err) {
      const e = err as Error;
      if (!(err instanceof WheelArgumentError)) log.error({ err, fun: req.fun }, 'wheel function raised');
      const text =
        err instanceof WheelArgumentError
          ? `Passed invalid arguments: ${e.message}`
          : `Exception occurred in wheel ${req.fun}: ${e.name}: ${e.message}`;
      return { jid, return: text, success: false, retcode: 1 };
    }
  };

  const inFlight = new Set<Promise<void>>();
  const sub: Subscription = o.ledger.nc.subscribe(apiSubjects.netapiWheel, {
    queue: o.queue ?? 'keyserver',
    callback: (err, msg) => {
      if (err) {
        log.error({ err }, 'wheel subscription error');
        return;
      }
      const p = handle(msg)
        .then((reply) => respondChunked(msg, reply, maxPayload()))
        .catch((e: unknown) => log.error({ err: e }, 'wheel request failed'))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    },
  });
  await o.ledger.nc.flush();
  log.info({ subject: apiSubjects.netapiWheel }, 'wheel serving');
  return {
    stop: async () => {
      sub.unsubscribe();
      await Promise.allSettled([...inFlight]);
    },
  };
}
