/** Benchmarks by name; each module's default export takes `emit` and prints JSON lines with it. */
export type Emit = (obj: Record<string, unknown>) => void;
type Bench = () => Promise<{ default: (emit: Emit) => Promise<void> }>;

export const benchmarks: Record<string, Bench> = {
  envelope: () => import('./envelope.js'),
  bus: () => import('./bus.js'),
  allowlist: () => import('./allowlist.js'),
  detect: () => import('./detect.js'),
  hub: () => import('./hub.js'),
};
