/* `sluice cql`: an interactive CQL shell in the spirit of cqlsh, on Sluice's C client. */
#ifndef SL_SHELL_SHELL_H
#define SL_SHELL_SHELL_H

/* argv[0] is "cql". Returns the process exit status: 0, 1 (cannot connect / bad usage), 2 (a statement failed). */
int sl_shell_main(int argc, char **argv);

#endif
