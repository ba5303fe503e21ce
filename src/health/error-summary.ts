/** Output lines kept in a one-line summary: the last ones say why, the earlier ones are in `logs`. */
const KEPT_LINES = 3;
const MAX_CHARS = 300;

/**
 * A member error on one line for issue lists, tables and the dashboard. Errors from a failed boot
 * read "<what happened>; last output:" followed by the member's own lines, and those lines are the
 * reason: cutting at the first newline left "last output:" with nothing after it.
 */
export function errorSummary(text: string | undefined): string {
  const lines = (text ?? '').split('\n').map((line) => line.trim()).filter(Boolean);
  const [head = '', ...output] = lines;
  if (output.length === 0) return head;
  const kept = output.slice(-KEPT_LINES).join(' | ');
  const more = output.length > KEPT_LINES ? '… | ' : '';
  const tail = `${more}${kept}`;
  const room = Math.max(40, MAX_CHARS - head.length - 1);
  return `${head} ${tail.length > room ? `…${tail.slice(-(room - 1))}` : tail}`;
}
