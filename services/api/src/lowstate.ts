import { parse as parseYaml } from 'yaml';
import { Limits, nestsDeeperThan } from '@jobledger/core';
import { yamlifyArg } from '@jobledger/runtime/salt-args';
import { ApiTexts, HttpError } from './http-errors.js';

/**
 * salt-api's request bodies (`hypermedia_in`, `lowdata_fmt`): JSON, YAML, form fields or a
 * `text/plain` JSON text (what SaltGUI sends) become a list of lowstate chunks, each a flat
 * mapping with a `client`.
 */
export type Chunk = Record<string, unknown>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function guarded(doc: unknown): unknown {
  if (nestsDeeperThan(doc, Limits.depth)) throw new HttpError(400, `the request is nested more than ${Limits.depth} levels deep`);
  return doc;
}

/** Parsers by media type; the body is the raw text. */
export function parseJsonBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return guarded(JSON.parse(text));
  } catch (cause) {
    if (cause instanceof HttpError) throw cause;
    throw new HttpError(400, ApiTexts.invalidJson, { cause });
  }
}

export function parseYamlBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return guarded(parseYaml(text, { maxAliasCount: Limits.yamlAliases }));
  } catch (cause) {
    if (cause instanceof HttpError) throw cause;
    throw new HttpError(400, ApiTexts.invalidYaml, { cause });
  }
}

/** `text/plain`: JSON when it parses, else the text itself (which then is not a list of lowstates). */
export function parseTextBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return guarded(JSON.parse(text));
  } catch (cause) {
    if (cause instanceof HttpError) throw cause;
    return text;
  }
}

/** Form fields: a repeated key is a list; `arg` values (and `kwarg`) are read as CLI words are. */
export function parseFormBody(text: string): Chunk | undefined {
  if (text === '') return undefined;
  const out: Chunk = {};
  for (const [k, v] of new URLSearchParams(text)) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...(prev as unknown[]), v] : [prev, v];
  }
  if (out.arg !== undefined) out.arg = (Array.isArray(out.arg) ? out.arg : [out.arg]).map((a) => yamlifyArg(String(a)));
  if (typeof out.kwarg === 'string') out.kwarg = yamlifyArg(out.kwarg);
  return out;
}

/** `lowdata_fmt` and the handler's check: a non-empty mapping is one chunk; a scalar `arg` a one-item list. */
export function lowstateChunks(body: unknown): Chunk[] {
  const list = isRecord(body) && Object.keys(body).length > 0 ? [body] : body;
  if (!Array.isArray(list)) throw new HttpError(400, ApiTexts.lowstateList);
  return list.map((chunk) => {
    if (!isRecord(chunk)) throw new HttpError(400, ApiTexts.lowstateList);
    if ('arg' in chunk && !Array.isArray(chunk.arg)) return { ...chunk, arg: [chunk.arg] };
    return chunk;
  });
}
