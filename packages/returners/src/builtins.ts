/** The returners jobledger ships, by Salt's virtual names. */
import type { ReturnerModule } from '@jobledger/core';
import { localCache } from './local-cache.js';
import { multiReturner } from './multi-returner.js';
import { pgjsonb } from './pgjsonb.js';
import { rawfileJson } from './rawfile-json.js';
import { smtp } from './smtp.js';
import { syslog } from './syslog.js';

export const builtinReturners: readonly ReturnerModule[] = [localCache, multiReturner, pgjsonb, rawfileJson, smtp, syslog];
