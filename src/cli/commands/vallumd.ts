export { register } from '../../compat/vallumd/cli.js';
