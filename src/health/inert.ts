/*
 * Text that reaches an operator's terminal from elsewhere (a remote dashboard, a guest's console
 * quoted in an error) made inert: escape sequences and control characters removed, so it can
 * neither set the title, clear the screen nor paint a fake ALL GREEN.
 */

const ESC = 0x1b;
const BEL = 0x07;
/** C0 controls, DEL and the C1 controls (0x9b alone is a CSI on some terminals). */
const isControl = (code: number) => code < 0x20 || (code >= 0x7f && code <= 0x9f);
/** Tab, line feed, vertical tab, form feed, carriage return: a field is one line, but its words stay apart. */
const isBreak = (code: number) => code >= 0x09 && code <= 0x0d;
const inRange = (code: number, low: number, high: number) => code >= low && code <= high;

/**
 * Where the escape sequence starting at `at` (an ESC) ends: CSI (ESC [ parameters, intermediates,
 * final byte), OSC / DCS / SOS / PM / APC strings (up to BEL or ST, or to the end when
 * unterminated), any other ESC plus one character.
 */
function escapeEnd(text: string, at: number): number {
  const kind = text[at + 1];
  let i = at + 2;
  if (kind === '[') {
    while (i < text.length && inRange(text.charCodeAt(i), 0x30, 0x3f)) i++;
    while (i < text.length && inRange(text.charCodeAt(i), 0x20, 0x2f)) i++;
    return i < text.length && inRange(text.charCodeAt(i), 0x40, 0x7e) ? i + 1 : i;
  }
  if (kind !== undefined && ']PX^_'.includes(kind)) {
    for (; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code === BEL) return i + 1;
      if (code === ESC) return text[i + 1] === '\\' ? i + 2 : i;
    }
    return i;
  }
  return Math.min(at + 2, text.length);
}

/** Text made inert for a terminal: its escape sequences and control characters removed; line breaks become one space. */
export function inertText(text: string): string {
  let out = '';
  let spaced = false;
  for (let i = 0; i < text.length; ) {
    const code = text.charCodeAt(i);
    if (code === ESC) {
      i = escapeEnd(text, i);
      continue;
    }
    if (isBreak(code)) {
      if (!spaced) out += ' ';
      spaced = true;
    } else if (!isControl(code)) {
      out += text[i];
      spaced = false;
    }
    i++;
  }
  return out;
}

/**
 * Every string of a remote's answer, keys included, made inert. Done once, where remote data
 * enters: a remote dashboard is another machine, and what it says reaches our operator's
 * terminal (it could set the title, clear the screen, or paint a fake ALL GREEN).
 */
export function inertStrings<T>(value: T): T {
  if (typeof value === 'string') return inertText(value) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => inertStrings(item)) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [inertText(key), inertStrings(item)])) as T;
  }
  return value;
}
