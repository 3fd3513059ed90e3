import type { Command } from 'commander';

/**
 * Every CLI command lives in its own file under commands/ and exports `register(program)`.
 * Adding a command is one import and one line in this list.
 */
type Register = (program: Command) => void;

export const commands: Array<() => Promise<{ register: Register }>> = [
];
