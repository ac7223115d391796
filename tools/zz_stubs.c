#include "cli.h"
int cmd_train(int c, char **v) { (void)c; (void)v; return 1; }
int cmd_eval(int c, char **v) { (void)c; (void)v; return 1; }
int cmd_predict(int c, char **v) { (void)c; (void)v; return 1; }
