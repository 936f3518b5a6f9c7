/* libgreet: the tiny shared library of the upm demo package. */
#ifndef GREET_H
#define GREET_H
const char *greet_who(void);
void greet(const char *name);
#endif
