import { Argument, type Command } from 'commander';
import { action } from '../exit.js';

export function register(program: Command): void {
  program
    .command('completion')
    .description('Print a bash or zsh completion script, generated from the commands themselves')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .addHelpText(
      'after',
      `
Install:
  rampart completion bash | sudo tee /etc/bash_completion.d/rampart >/dev/null
  echo 'source <(rampart completion bash)' >> ~/.bashrc
  rampart completion zsh > "\${fpath[1]}/_rampart"      # then: autoload -U compinit && compinit`,
    )
    .action(
      action(async (shell: string) => {
        const { bashCompletion, zshCompletion } = await import('../../ops/completion.js');
        // The root command, whatever the depth: completion covers the whole tree.
        let root = program;
        while (root.parent) root = root.parent;
        // commander has already refused anything but the two choices.
        process.stdout.write(shell === 'bash' ? bashCompletion(root) : zshCompletion(root));
      }),
    );
}
