import { z } from 'zod';

/** Salt's `_stamp`: ISO time without zone. */
export const stamp = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?$/, 'not a Salt _stamp');
export const jid = z.string().regex(/^\d{20}(_.+)?$/, 'not a Salt jid');
export const agentId = z.string().min(1);
export const target = z.union([z.string(), z.array(z.string())]);
export const tgtType = z.enum([
  'glob',
  'pcre',
  'list',
  'grain',
  'grain_pcre',
  'pillar',
  'pillar_pcre',
  'ipcidr',
  'compound',
  'nodegroup',
  'range',
]);
export type TgtType = z.infer<typeof tgtType>;
