/**
 * Agent id lists as operators write them for a fleet: `web-1,db-1`, and ranges
 * `web-[1-1000]` (`web-1` … `web-1000`) or `web-[001-100]` (zero-padded when the bounds are:
 * `web-001` … `web-100`). Used by `up --agents`, `agent --id` and `agent --ids-file`.
 */

/** How many ids one list may name: more is a typo (`[1-10000000]`), not a fleet. */
export const MAX_LISTED_IDS = 100_000;

/** An id list that cannot be expanded (not retryable: the operator fixes the words). */
export class IdListError extends Error {
  override readonly name = 'IdListError';
  readonly retryable = false;
}

const RANGE = /\[(\d+)-(\d+)\]/;

/** One word (no comma): its ids, in order. At most one range per word. */
export function expandIdWord(word: string): string[] {
  const m = RANGE.exec(word);
  if (m === null) {
    if (/[[\]]/.test(word)) throw new IdListError(`'${word.slice(0, 80)}' is not an id or a range such as web-[1-10]`);
    return [word];
  }
  const [whole, lo, hi] = m as unknown as [string, string, string];
  const before = word.slice(0, m.index);
  const after = word.slice(m.index + whole.length);
  if (/[[\]]/.test(before) || /[[\]]/.test(after)) throw new IdListError(`'${word.slice(0, 80)}' has more than one range`);
  const from = Number(lo);
  const to = Number(hi);
  if (from > to) throw new IdListError(`the range [${lo}-${hi}] goes down: write [${hi}-${lo}]`);
  const count = to - from + 1;
  if (count > MAX_LISTED_IDS) throw new IdListError(`the range [${lo}-${hi}] names ${count} ids, more than ${MAX_LISTED_IDS}`);
  // Zero-padded when a bound is written with a leading zero: to the width of the wider bound.
  const padded = (lo.length > 1 && lo.startsWith('0')) || (hi.length > 1 && hi.startsWith('0'));
  const width = padded ? Math.max(lo.length, hi.length) : 0;
  const ids: string[] = [];
  for (let n = from; n <= to; n++) ids.push(`${before}${String(n).padStart(width, '0')}${after}`);
  return ids;
}

/**
 * A list of ids (words separated by commas, or by new lines in an ids file; `#` starts a comment
 * in a file), ranges expanded, order kept, each id once.
 */
export function expandIdList(text: string, opts: { file?: boolean } = {}): string[] {
  const words = opts.file ? text.split(/\r?\n/).flatMap((line) => line.replace(/#.*$/, '').split(',')) : text.split(',');
  const ids = new Set<string>();
  for (const raw of words) {
    const word = raw.trim();
    if (word === '') continue;
    for (const id of expandIdWord(word)) {
      ids.add(id);
      if (ids.size > MAX_LISTED_IDS) throw new IdListError(`the list names more than ${MAX_LISTED_IDS} ids`);
    }
  }
  return [...ids];
}

/** Ids spread over `n` processes as evenly as possible, consecutive ids together. */
export function spreadIds(ids: readonly string[], n: number): string[][] {
  const parts = Math.max(1, Math.min(n, ids.length));
  const out: string[][] = [];
  let at = 0;
  for (let i = 0; i < parts; i++) {
    const size = Math.floor(ids.length / parts) + (i < ids.length % parts ? 1 : 0);
    out.push(ids.slice(at, at + size));
    at += size;
  }
  return out;
}

/** `up`'s default number of agent processes: one per id up to 8 ids, then 4. */
export function defaultAgentProcesses(idCount: number): number {
  return idCount <= 8 ? Math.max(1, idCount) : 4;
}
