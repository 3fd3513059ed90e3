export { register } from '../../compat/syslog-blacklist/cli.js';
