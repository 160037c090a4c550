/** Salt's `yaml` outputter: PyYAML `safe_dump(data, default_flow_style=False, allow_unicode=True)`. */
import { Document, isScalar, visit, type Pair, type ScalarTag } from 'yaml';
import { compareCodePoints, pyNumber, pyRstrip } from './raw.js';

/** PyYAML writes floats as `repr().lower()` with a `.0` forced before an exponent (`1.0e-05`). */
const pyFloat: ScalarTag = {
  identify: (v) => typeof v === 'number' && Number.isFinite(v) && !Number.isInteger(v),
  default: true,
  tag: 'tag:yaml.org,2002:float',
  test: /(?!)/, // used for output only; never claims a plain string when parsing
  resolve: (s) => Number(s),
  stringify: ({ value }) => {
    const repr = pyNumber(value as number);
    return repr.includes('.') ? repr : repr.replace('e', '.0e');
  },
};

/** Characters PyYAML will not write unescaped; a string holding one is double-quoted. */
const PYYAML_SPECIAL = /[^\n\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\u{10000}-\u{10fffe}]|\ufeff/u;

const keyText = (pair: Pair): string => String(isScalar(pair.key) ? pair.key.value : pair.key);

/**
 * `--out-indent`: negative gives PyYAML's flow style (`{m1: true}`); 2, or a value PyYAML
 * ignores (0, 1, 10 and more), the default block style. Indents 3 to 9 are written with the
 * default indent (PyYAML's indentless sequences under a wider indent are not reproduced).
 */
export function renderYaml(data: unknown, outIndent?: number): string {
  const doc = new Document(data, {
    version: '1.1', // PyYAML quotes YAML 1.1 look-alikes such as `yes` and dates
    customTags: (tags) => [pyFloat, ...tags],
    sortMapEntries: (a, b) => compareCodePoints(keyText(a), keyText(b)), // PyYAML sort_keys
  });
  const flow = outIndent !== undefined && outIndent < 0;
  visit(doc, {
    Scalar(_, node) {
      if (typeof node.value === 'string' && PYYAML_SPECIAL.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
    Map(_, node) {
      if (flow) node.flow = true;
    },
    Seq(_, node) {
      if (flow) node.flow = true;
    },
  });
  const text = doc.toString({
    indentSeq: false, // PyYAML does not indent a sequence under its key
    singleQuote: true,
    blockQuote: false, // PyYAML quotes multi-line strings instead of using `|`
    flowCollectionPadding: false, // PyYAML writes `{a: 1}`
  });
  return pyRstrip(text);
}
