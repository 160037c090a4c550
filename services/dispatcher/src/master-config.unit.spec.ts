import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MasterConfigError, MasterConfigFile, parseMasterConfig } from './master-config.js';

describe('parseMasterConfig', () => {
  it('reads nodegroups from YAML or JSON', () => {
    expect(parseMasterConfig('nodegroups:\n  g1: web* or db1\n  g2:\n    - a\n    - b\n', 'f').nodegroups).toEqual({
      g1: 'web* or db1',
      g2: ['a', 'b'],
    });
    expect(parseMasterConfig('{"nodegroups": {"g": "L@a,b"}}', 'f').nodegroups).toEqual({ g: 'L@a,b' });
  });
  it('accepts a list of one-key mappings, an empty file and a file without nodegroups', () => {
    expect(parseMasterConfig('nodegroups:\n  - g1: a\n  - g2: b\n', 'f').nodegroups).toEqual({ g1: 'a', g2: 'b' });
    expect(parseMasterConfig('', 'f').nodegroups).toEqual({});
    expect(parseMasterConfig('timeout: 5\n', 'f').nodegroups).toEqual({});
  });
  it('refuses what is not a mapping', () => {
    expect(() => parseMasterConfig('- a\n', 'm.yaml')).toThrow(new MasterConfigError('m.yaml must hold a mapping'));
    expect(() => parseMasterConfig('nodegroups: 3\n', 'm.yaml')).toThrow(/nodegroups in m.yaml must be a mapping/);
    expect(() => parseMasterConfig('a: [\n', 'm.yaml')).toThrow(/m.yaml is not valid YAML/);
  });
});

describe('MasterConfigFile', () => {
  it('reads the file again when it changes, and keeps the last good one when it breaks', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobledger-master-'));
    const file = path.join(dir, 'master.yaml');
    try {
      const cfg = new MasterConfigFile(file);
      expect(cfg.current().nodegroups).toEqual({});
      fs.writeFileSync(file, 'nodegroups:\n  g: a\n');
      expect(cfg.current().nodegroups).toEqual({ g: 'a' });
      fs.writeFileSync(file, 'nodegroups:\n  g: a b c\n');
      expect(cfg.current().nodegroups).toEqual({ g: 'a b c' });
      fs.writeFileSync(file, 'nodegroups: [\n');
      expect(cfg.current().nodegroups).toEqual({ g: 'a b c' });
      fs.rmSync(file);
      expect(cfg.current().nodegroups).toEqual({});
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
