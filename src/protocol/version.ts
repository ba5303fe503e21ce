/** Bumped whenever a request or reply changes shape; both ends check it at bind time. */
export const PROTOCOL_VERSION = '1';

/** A line longer than this is refused with bad_request and the connection is closed. */
export const MAX_LINE_BYTES = 1024 * 1024;
