/** Salt's `quiet` outputter: prints nothing. */
export function renderQuiet(): string {
  return '';
}
