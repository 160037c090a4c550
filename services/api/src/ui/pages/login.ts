import { html, type Html } from '../html.js';

export function loginPage(next: string, username = ''): Html {
  return html`<h1>Log in</h1>
    <form class="login" method="post" action="/ui/login">
      <input type="hidden" name="next" value="${next}" />
      <label>User <input name="username" autocomplete="username" required value="${username}" /></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>
      <input type="hidden" name="eauth" value="file" />
      <button type="submit">Log in</button>
    </form>`;
}
