import type { MemberView } from '../control/status.js';

/**
 * Turns the state changes `up` polls into lines a person reads once: each member's state at most
 * once, in the order first seen. The holder goes starting → downloading → starting while it
 * prepares the image; to a reader that is one start with progress, so `downloading` is not a
 * state of its own here and the second `starting` is not news. Progress messages (the image is
 * shared, so every member reports the same ones) are shown once each, as progress.
 */
export function bootProgress(write: (line: string) => void): (view: MemberView) => void {
  const shown = new Map<string, Set<string>>();
  const progressShown = new Set<string>();
  return (view) => {
    const states = shown.get(view.name) ?? new Set<string>();
    shown.set(view.name, states);
    const state = view.state === 'downloading' ? 'starting' : view.state;
    if (!states.has(state)) {
      states.add(state);
      write(`${view.name}: ${state}`);
    }
    if (view.state === 'downloading' && view.progress && !progressShown.has(view.progress)) {
      progressShown.add(view.progress);
      write(`  preparing: ${view.progress}`);
    }
  };
}
