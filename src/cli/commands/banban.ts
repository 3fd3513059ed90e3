export { register } from '../../compat/banban/cli.js';
