import type { NetworkShape } from './schemas.js';

/** A shape as people say it: `200±50 ms delay, 10% loss, rate 1mbit`. */
export function describeShape(shape: NetworkShape): string {
  const parts: string[] = [];
  if (shape.delayMs > 0 || shape.jitterMs > 0) parts.push(`${shape.delayMs}${shape.jitterMs > 0 ? `±${shape.jitterMs}` : ''} ms delay`);
  if (shape.lossPercent > 0) parts.push(`${shape.lossPercent}% loss`);
  if (shape.rate) parts.push(`rate ${shape.rate}`);
  return parts.join(', ');
}
