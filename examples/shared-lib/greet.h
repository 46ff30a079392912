#ifndef GREET_H
#define GREET_H
/* The library's one function: the line `greet` prints. */
const char *greet_line(void);
#endif
