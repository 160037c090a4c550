import { html, type Html } from '../html.js';

export interface RunForm {
  tgt?: string;
  tgt_type?: string;
  fun?: string;
  args?: string;
}

const TGT_TYPES = ['glob', 'list', 'pcre', 'grain', 'grain_pcre', 'pillar', 'nodegroup', 'ipcidr', 'compound'];

export function runPage(f: RunForm): Html {
  return html`<h1>Run a job</h1>
    <form class="run" method="post" action="/ui/run">
      <label>Target <input name="tgt" required value="${f.tgt ?? '*'}" /></label>
      <label
        >Target type
        <select name="tgt_type">
          ${TGT_TYPES.map((t) => html`<option${(f.tgt_type ?? 'glob') === t ? html` selected` : ''}>${t}</option>`)}
        </select></label
      >
      <label>Function <input name="fun" required value="${f.fun ?? 'test.ping'}" /></label>
      <label
        >Arguments <input name="args" value="${f.args ?? ''}" placeholder="'echo hi' timeout=10" /><small
          >as on the command line: words, quotes, key=value</small
        ></label
      >
      <button type="submit">Run</button>
    </form>`;
}
