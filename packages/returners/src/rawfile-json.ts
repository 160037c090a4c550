/**
 * Salt's `rawfile_json` returner: one JSON document per line appended to `filename`
 * (option `rawfile_json.filename`, default `/var/log/salt/events`), for returns and for events
 * (`{tag, data}`). Parent directories are created. Salt holds an flock while it writes; here
 * each call is one append of whole lines, and calls on the same file within a process are
 * queued, so lines never interleave.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  ReturnerError,
  type ReturnLoad,
  type Returner,
  type ReturnerContext,
  type ReturnerEvent,
  type ReturnerModule,
} from '@jobledger/core';
import { errorText, returnerOptions, saltJsonDumps } from './support.js';

const NAME = 'rawfile_json';
export const DEFAULT_EVENTS_FILE = '/var/log/salt/events';

/** The tail of the write queue of each file, so appends in one process happen in order. */
const queues = new Map<string, Promise<void>>();

function appendQueued(file: string, text: string): Promise<void> {
  const previous = queues.get(file) ?? Promise.resolve();
  const next = previous.then(async () => {
    await mkdir(path.dirname(file), { recursive: true });
    await appendFile(file, text);
  });
  const tail = next.catch(() => undefined);
  queues.set(file, tail);
  void tail.then(() => {
    if (queues.get(file) === tail) queues.delete(file);
  });
  return next;
}

class RawfileJsonReturner implements Returner {
  constructor(private readonly ctx: ReturnerContext) {}

  private filename(ret?: ReturnLoad): string {
    const opts = returnerOptions(this.ctx, NAME, ['filename'], { filename: DEFAULT_EVENTS_FILE }, ret);
    const file = opts['filename'];
    if (typeof file !== 'string' || file === '') {
      throw new ReturnerError(NAME, `option filename must be a path, got ${JSON.stringify(file)}`, { retryable: false });
    }
    return path.resolve(file);
  }

  private async write(file: string, text: string): Promise<void> {
    try {
      await appendQueued(file, text);
    } catch (err) {
      // A full disk, a missing mount, a permission: all for an operator to put right, after which
      // the same line can be written, so the return is held (retryable), never skipped.
      throw new ReturnerError(NAME, `Could not write to rawdata_json file ${file}: ${errorText(err)}`, { retryable: true, cause: err });
    }
  }

  async returner(ret: ReturnLoad): Promise<void> {
    await this.write(this.filename(ret), `${saltJsonDumps(ret)}\n`);
  }

  async eventReturn(events: readonly ReturnerEvent[]): Promise<void> {
    if (events.length === 0) return;
    const text = events.map((e) => `${saltJsonDumps({ tag: e.tag, data: e.data })}\n`).join('');
    await this.write(this.filename(), text);
  }
}

export const rawfileJson: ReturnerModule = {
  name: NAME,
  description: 'Appends returns and events, one JSON document per line, to a file',
  create: (ctx) => new RawfileJsonReturner(ctx),
};
