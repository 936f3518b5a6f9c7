/* libgreet: says hello, and tells who installed it (the package user owns the file). */
#include <stdio.h>
#include "greet.h"

const char *greet_who(void) { return "upm-demo"; }

void greet(const char *name) {
    printf("Hello, %s! (from libgreet, installed by package user %s)\n", name, greet_who());
}
