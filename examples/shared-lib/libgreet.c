#include "greet.h"

const char *greet_line(void)
{
    return "Hello from libgreet.so.0";
}
