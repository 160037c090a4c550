/** Salt's outputters: pure functions from a return structure to the text to print (the CLI's, and the web UI's). */
import { renderJson } from './json.js';
import { renderNested } from './nested.js';
import { renderNoReturn } from './no-return.js';
import { renderQuiet } from './quiet.js';
import { renderRaw } from './raw.js';
import { renderTxt } from './txt.js';
import { renderYaml } from './yaml.js';

export type OutputterName = 'nested' | 'json' | 'yaml' | 'txt' | 'raw' | 'quiet' | 'no_return';

const OUTPUTTERS: ReadonlySet<string> = new Set<OutputterName>(['nested', 'json', 'yaml', 'txt', 'raw', 'quiet', 'no_return']);

/** Whether Salt knows `name` as an outputter jobledger has (`text` included); else it falls back to nested. */
export function isOutputter(name: string): boolean {
  return name === 'text' || OUTPUTTERS.has(name);
}

/** `text` is an alias of `txt`; empty or unknown names fall back to `nested`. */
export function resolveOutputter(name?: string): OutputterName {
  if (name === 'text') return 'txt';
  return name !== undefined && OUTPUTTERS.has(name) ? (name as OutputterName) : 'nested';
}

export interface RenderOptions {
  color: boolean;
  /** `nested_indent` for the nested outputter. */
  indent?: number;
  /** The return's retcode (nested turns red when ≠ 0). */
  retcode?: number;
  /** `--out-indent` for JSON (default 4, negative → one line) and YAML (negative → flow style). */
  outIndent?: number;
}

function render(name: OutputterName, data: unknown, opts: RenderOptions): string {
  switch (name) {
    case 'nested':
      return renderNested(data, opts);
    case 'json':
      return renderJson(data, opts.outIndent);
    case 'yaml':
      return renderYaml(data, opts.outIndent);
    case 'txt':
      return renderTxt(data);
    case 'raw':
      return renderRaw(data);
    case 'quiet':
      return renderQuiet();
    case 'no_return':
      return renderNoReturn(data, opts);
  }
}

/**
 * The right-trimmed text Salt prints for `data` (normally `{<minion id>: <ret>}`), without
 * the final newline; an empty string means print nothing. `name` is resolved with
 * `resolveOutputter`. Like Salt, a failing outputter falls back to `nested`, then `raw`.
 */
export function renderReturn(name: string, data: unknown, opts: RenderOptions): string {
  try {
    return render(resolveOutputter(name), data, opts);
  } catch {
    try {
      return renderNested(data, opts);
    } catch {
      return renderRaw(data);
    }
  }
}

export { renderJson, renderNested, renderNoReturn, renderQuiet, renderRaw, renderTxt, renderYaml };
