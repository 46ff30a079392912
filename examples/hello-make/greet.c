#include "greet.h"

const char *greet_message(void)
{
    return "Hello from xbuild (hello-make)";
}

const char *greet_version(void)
{
    return "hello-make 1.0";
}
