import { createHash } from 'node:crypto';

/** The page's only style sheet, inline and allowed by its hash: no 'unsafe-inline', no extra request. */
export const PAGE_STYLE = [
  'body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}',
  'h1{font-size:1.3em;margin:0 0 .3em}h2{font-size:1.05em;margin:1.4em 0 .4em}',
  'table{border-collapse:collapse}th,td{text-align:left;padding:.2em .8em .2em 0;vertical-align:top}',
  'th{border-bottom:1px solid #999}td{border-bottom:1px solid #eee}',
  '.red{color:#b00020;font-weight:600}.amber{color:#a15c00;font-weight:600}.green{color:#1b7f3b}.grey{color:#777}',
  '.banner{padding:.6em .8em;border-left:6px solid}.banner.red{border-color:#b00020}.banner.amber{border-color:#a15c00}.banner.green{border-color:#1b7f3b}',
  'code{background:#f3f3f3;padding:0 .2em}small{color:#666}',
].join('');

const styleHash = createHash('sha256').update(PAGE_STYLE).digest('base64');

/**
 * Nothing may load but the one hashed style sheet: no scripts at all, no frames, no forms, no
 * base-URI tricks. The page works without JavaScript (it refreshes with a meta tag).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src 'sha256-${styleHash}'`,
  "img-src 'none'",
  "script-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Sent on every response, errors included. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
};
