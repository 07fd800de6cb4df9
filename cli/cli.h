/*
 * cli.h — what the `freshet` command's files share (main.c, status.c,
 * rollback.c): the commands main() dispatches to and their help texts.
 * The wording of errors, option parsing and the ZooKeeper options are
 * cliutil.h's, shared with freshet-witness.  Private to cli/; nothing here
 * is a library API.
 */
#ifndef FRESHET_CLI_H
#define FRESHET_CLI_H

#include "cli/cliutil.h"

/* status.c: the cluster at a glance (docs/cli.md). */
int cmd_status(int argc, char **argv);
extern const char status_help[];

/* rollback.c: rollback, history, role (docs/design.md §6, docs/cli.md). */
int cmd_rollback(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_role(int argc, char **argv);
extern const char rollback_help[];
extern const char history_help[];
extern const char role_help[];

#endif /* FRESHET_CLI_H */
