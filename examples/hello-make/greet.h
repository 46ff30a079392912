#ifndef GREET_H
#define GREET_H

const char *greet_message(void);
const char *greet_version(void);

#endif
