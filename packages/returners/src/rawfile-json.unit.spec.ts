import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReturnLoad } from '@jobledger/core';
import { ReturnerRegistry } from './registry.js';
import { recordingLogger } from './testing/recording-logger.js';

let dir: string;
let registry: ReturnerRegistry;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'jobledger-rawfile-'));
});

afterEach(async () => {
  await registry?.closeAll();
  await rm(dir, { recursive: true, force: true });
});

function open(config: Record<string, unknown>) {
  registry = new ReturnerRegistry({ role: 'master', hostId: 'master_master', config, logger: recordingLogger() });
  return registry;
}

const RET: ReturnLoad = {
  id: 'web1',
  jid: '20250301120000123456',
  fun: 'test.echo',
  fun_args: ['é "q"'],
  return: 'é "q"',
  retcode: 0,
  success: true,
};

describe('rawfile_json', () => {
  it('appends each return as one JSON line, Python json.dumps spacing, creating parent dirs', async () => {
    const file = path.join(dir, 'deep', 'er', 'events');
    const r = await open({ 'rawfile_json.filename': file }).get('rawfile_json');
    await r.returner(RET);
    await r.returner({ ...RET, id: 'web2', return: { a: [1, 2.5, null], b: false } });
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(JSON.parse(lines[0]!)).toEqual(RET);
    expect(lines[1]).toBe(
      '{"id": "web2", "jid": "20250301120000123456", "fun": "test.echo", "fun_args": ["é \\"q\\""], "return": {"a": [1, 2.5, null], "b": false}, "retcode": 0, "success": true}',
    );
  });

  it('event_return writes one {tag, data} line per event and nothing for an empty batch', async () => {
    const file = path.join(dir, 'events');
    const r = await open({ rawfile_json: { filename: file } }).get('rawfile_json');
    await r.eventReturn!([]);
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
    const events = [
      { tag: '20250301120000123456', data: { minions: ['web1'], _stamp: '2025-03-01T12:00:00.123456' } },
      { tag: 'salt/job/20250301120000123456/ret/web1', data: { ...RET, _stamp: '2025-03-01T12:00:00.200000' } },
    ];
    await r.eventReturn!(events);
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual(events);
    expect(lines[0]!.startsWith('{"tag": "20250301120000123456", "data": {')).toBe(true);
  });

  it('--return_config and --return_kwargs choose the file', async () => {
    const main = path.join(dir, 'main');
    const alt = path.join(dir, 'alt');
    const kw = path.join(dir, 'kw');
    const reg = open({ 'rawfile_json.filename': main, 'alternative.rawfile_json.filename': alt });
    await (await reg.get('rawfile_json', { retConfig: 'alternative' })).returner(RET);
    await (await reg.get('rawfile_json')).returner({ ...RET, ret_kwargs: { filename: kw } });
    expect((await readFile(alt, 'utf8')).trimEnd().split('\n')).toHaveLength(1);
    expect((await readFile(kw, 'utf8')).trimEnd().split('\n')).toHaveLength(1);
    await expect(readFile(main)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('concurrent appends never interleave', async () => {
    const file = path.join(dir, 'events');
    const r = await open({ 'rawfile_json.filename': file }).get('rawfile_json');
    const big = 'x'.repeat(200_000);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 === 0
          ? r.returner({ ...RET, id: `m${i}`, return: big })
          : r.eventReturn!([
              { tag: `t${i}/a`, data: { big } },
              { tag: `t${i}/b`, data: { big } },
            ]),
      ),
    );
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(60);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
    const tags = lines
      .map((l) => JSON.parse(l) as { tag?: string })
      .filter((e) => e.tag)
      .map((e) => e.tag!);
    // each event batch stays together
    for (let i = 0; i < tags.length; i += 2) expect(tags[i + 1]).toBe(tags[i]!.replace(/a$/, 'b'));
  });

  it('a file that cannot be written is a clear error, retryable: an operator can put it right', async () => {
    const r = await open({ 'rawfile_json.filename': dir }).get('rawfile_json');
    await expect(r.returner(RET)).rejects.toMatchObject({
      retryable: true,
      message: expect.stringContaining(`Could not write to rawdata_json file ${dir}`),
    });
  });
});
